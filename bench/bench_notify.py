"""The notify service's two hot paths: alerts rendered and handed to an SMTP server, and the
rules evaluated against each incoming event.

    .venv/bin/python -m bench.bench_notify [--seconds 5] [--rules 200] [--events 300]
                                           [--connections N]

1. **Email throughput** (per notify process). A local SMTP server (``tools.mail_catcher``,
   aiosmtpd) runs as a process of its own, keeping what it gets in memory. The *baseline* is
   raw ``smtplib`` on one connection sending a prebuilt UTF-8 message for ``--seconds``. Then
   notify, on a SQLite database (the dev default) in a temporary directory, for ``--seconds``:
   ``enqueue`` stores alerts in batches of 100 (one transaction each, as a rule's firing
   does), and the delivery worker claims them, builds each MIME message (plain and HTML parts,
   RFC 2047 subject, preferences link) and hands it over on its kept connection, recording
   each attempt and outcome. Printed: messages per second for the baseline, for the worker
   alone and for enqueue plus worker, with notify's ratio to the baseline. The rate limit is
   off here (every alert is its own message) and the clock is noon in Shanghai (no quiet
   hours).
2. **Rule evaluation.** ``--rules`` enabled event rules on ``sales``/``invoice_overdue`` (the
   U8 overdue alert with thresholds that differ per rule, so none of them holds), and
   ``--events`` events: the cost per event of evaluating every rule's condition alone
   (``conditions.holds``), and of the whole firing path of the service's handler
   (``Alerts.on_event``: the rule index, the subject, every condition) on SQLite; then the
   same with one rule that holds, so one alert goes to the inbox, the email and the SMS queue.

``--connections`` is accepted as every benchmark takes it (no HTTP here).
"""

from __future__ import annotations

import argparse
import os
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from crm_common.application import NO_EVENTS, UseCaseContext
from crm_common.context import Principal
from crm_common.db import SessionScope, dispose_engine, engine_for
from notify.application import deliveries
from notify.application.alerts import Alerts, RuleIndex
from notify.application.deliveries import OutgoingMessage, Recipient, enqueue
from notify.application.read_models import ReadModels
from notify.application.rules import Rules
from notify.application.sending import DeliveryWorker
from notify.channels.email import SmtpSender, SmtpSettings
from notify.domain import conditions
from notify.domain.delivery import RateLimit
from notify.models import Base

ROOT = Path(__file__).resolve().parents[1]
SHANGHAI = ZoneInfo("Asia/Shanghai")
NOON = datetime.now(SHANGHAI).replace(hour=12, minute=0, second=0, microsecond=0).astimezone(UTC)
BATCH = 100
SUBJECT = "应收逾期：上海华东机电设备有限公司 INV-2026-0042 已逾期 30 天"
TEXT = (
    "客户 上海华东机电设备有限公司 的发票 INV-2026-0042（¥128,000.00）已逾期 30 天，"
    "信用额度已用 92%。请尽快联系客户财务跟进催收，并在系统中记录跟进结果。"
)
ADMIN = Principal("u-admin", "d-hq", roles=("admin",), permissions=("alerts:admin",))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def mail_server() -> Iterator[int]:
    """The local SMTP server as a process of its own; its SMTP port."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-W",
            "ignore",
            "-m",
            "tools.mail_catcher",
            "--smtp-port",
            str(port),
            "--http-port",
            str(free_port()),
            "--directory",
            "",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the mail catcher did not start") from None
                time.sleep(0.05)
        yield port
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def baseline(port: int, seconds: float) -> float:
    """Raw smtplib: one connection, one prebuilt message again and again."""
    message = EmailMessage()
    message["From"] = "CRM 消息提醒 <alerts@crm.example.cn>"
    message["To"] = "王小明 <wang@example.cn>"
    message["Subject"] = SUBJECT
    message.set_content(TEXT)
    message.add_alternative(f"<p>{TEXT}</p>", subtype="html")
    smtp = smtplib.SMTP("127.0.0.1", port, timeout=10)
    sent = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        smtp.send_message(message)
        sent += 1
    elapsed = time.perf_counter() - started
    smtp.quit()
    return sent / elapsed


def notify_throughput(port: int, seconds: float, directory: Path) -> tuple[float, float, int]:
    """(enqueue + worker, worker alone) messages per second, and how many were sent."""
    uri = f"sqlite:///{directory / 'notify-email.db'}"
    engine = engine_for(uri)
    Base.metadata.create_all(engine)
    db = SessionScope(engine)
    deliveries.SETTINGS.rate_limit = RateLimit(limit=0)
    settings = SmtpSettings(host="127.0.0.1", port=port, from_address="alerts@crm.example.cn")
    worker = DeliveryWorker(db, {"email": SmtpSender(settings)}, batch=BATCH)
    message = OutgoingMessage(
        subject=SUBJECT,
        text=TEXT,
        html=None,
        sms_template=None,
        link="https://crm.example.cn/receivables/INV-2026-0042",
    )
    sent = 0
    sending = 0.0
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < seconds:
            with db.session() as session:
                for _ in range(BATCH):
                    n = uuid.uuid4().hex
                    enqueue(
                        session,
                        recipient=Recipient(f"u-{n[:8]}", "王小明", f"{n[:8]}@example.cn", None),
                        channel="email",
                        message=message,
                        alert_type="invoice_overdue",
                        rule_id=None,
                        dedup_key=f"bench:{n}",
                        severity="warning",
                        critical=False,
                        now=NOON,
                    )
            worker_started = time.perf_counter()
            result = worker.run_until_idle(NOON)
            sending += time.perf_counter() - worker_started
            if result.sent != BATCH:
                raise RuntimeError(f"only {result.sent} of {BATCH} sent: {result}")
            sent += result.sent
        elapsed = time.perf_counter() - started
    finally:
        dispose_engine(uri)
    return sent / elapsed, sent / sending, sent


# -- rule evaluation ------------------------------------------------------------------------


def overdue_rule(index: int, threshold: int) -> dict[str, Any]:
    return {
        "code": f"overdue_{index:03d}",
        "name": f"发票逾期 {threshold} 天",
        "alert_type": "receivable_overdue",
        "enabled": True,
        "trigger": {"type": "event", "source": "sales", "event_type": "invoice_overdue"},
        "conditions": {
            "all": [
                {"field": "days_overdue", "op": ">=", "value": threshold},
                {"field": "invoice.outstanding", "op": ">", "value": "1000"},
            ]
        },
        "recipients": [{"type": "owner"}],
        "channels": {
            "inbox": {
                "subject": "发票 {code} 已逾期 {days_overdue} 天",
                "body": "欠 {outstanding}",
            },
            "email": {"subject": "发票 {code} 逾期", "body": "未收 {outstanding} {currency}"},
            "sms": {"template": "SMS_1", "params": {"code": "{code}"}, "text": "发票{code}逾期"},
        },
        "severity": "warning",
    }


def overdue_event(n: int, days: int) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": "invoice_overdue",
        "version": "1.0",
        "occurred_at": NOON.isoformat(),
        "source": "sales",
        "actor_id": None,
        "data": {
            "invoice": {
                "invoice_no": f"INV-{n:06d}",
                "customer_id": "5c1f5d1e-8a39-4d7f-9b61-6a0a4d1e2f01",
                "customer_name": "华东机电设备有限公司",
                "outstanding": "12345.50",
                "currency": "CNY",
                "owner_id": "u-sales-01",
                "department_id": "d-east-sh",
            },
            "days_overdue": days,
            "threshold": 30,
            "customer_id": "5c1f5d1e-8a39-4d7f-9b61-6a0a4d1e2f01",
            "owner_id": "u-sales-01",
            "department_id": "d-east-sh",
        },
    }


def seed_people(session: Any) -> None:
    models = ReadModels(session, NOON)
    models.keep_department(
        {
            "id": "d-east-sh",
            "version": 1,
            "code": "d-east-sh",
            "name": "上海办",
            "parent_id": None,
            "manager_id": None,
            "path": "d-east-sh",
        }
    )
    models.keep_person(
        {
            "id": "p-sales-01",
            "version": 1,
            "user_id": "u-sales-01",
            "code": "p-sales-01",
            "name": "张伟",
            "department_id": "d-east-sh",
            "mobile": "13901880301",
            "email": "zhang@example.com",
            "status": "active",
        }
    )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def rule_evaluation(rules: int, events: int, directory: Path) -> list[tuple[str, list[float]]]:
    uri = f"sqlite:///{directory / 'notify-rules.db'}"
    engine = engine_for(uri)
    Base.metadata.create_all(engine)
    db = SessionScope(engine)
    with db.session() as session:
        seed_people(session)
        use_cases = Rules(UseCaseContext(session, NO_EVENTS, ADMIN, NOON))
        for index in range(rules):
            use_cases.create(overdue_rule(index, 10_000 + index))  # none of them holds
    index = RuleIndex()
    rows: list[tuple[str, list[float]]] = []
    try:
        with db.read() as session:
            compiled = index.rules_for(session, "sales", "invoice_overdue")
        assert len(compiled) == rules, len(compiled)
        pure = []
        for n in range(events):
            data = overdue_event(n, 45)["data"]
            started = time.perf_counter()
            for rule in compiled:
                conditions.holds(rule.conditions, data)
            pure.append(time.perf_counter() - started)
        rows.append((f"conditions of {rules} rules (holds)", pure))
        path = []
        for n in range(events):
            envelope = overdue_event(n, 45)
            started = time.perf_counter()
            with db.session() as session:
                fired = Alerts(session, NOON, index).on_event("sales", envelope)
            path.append(time.perf_counter() - started)
            assert fired.alerts == 0, fired
        rows.append((f"on_event, {rules} rules, none holds", path))
        with db.session() as session:
            Rules(UseCaseContext(session, NO_EVENTS, ADMIN, NOON)).create(overdue_rule(rules, 30))
        firing = []
        for n in range(min(events, 100)):
            envelope = overdue_event(events + n, 45)
            started = time.perf_counter()
            with db.session() as session:
                fired = Alerts(session, NOON, index).on_event("sales", envelope)
            firing.append(time.perf_counter() - started)
            assert fired.alerts == 1, fired
        rows.append((f"on_event, {rules + 1} rules, one holds (inbox+email+SMS)", firing))
    finally:
        dispose_engine(uri)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per throughput run")
    parser.add_argument("--rules", type=int, default=200, help="active event rules")
    parser.add_argument("--events", type=int, default=300, help="events evaluated")
    parser.add_argument("--connections", type=int, default=None, help="accepted; unused")
    args = parser.parse_args()
    # a terminated run still stops its mail server and removes its files
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    quick = args.seconds < 2
    events = min(args.events, 50) if quick else args.events

    print(f"# notify bench, pid {os.getpid()}, {os.cpu_count()} CPUs, SQLite")
    with tempfile.TemporaryDirectory(prefix="bench-notify-") as tmp, mail_server() as port:
        raw = baseline(port, args.seconds)
        end_to_end, worker_only, sent = notify_throughput(port, args.seconds, Path(tmp))
        print()
        print("# email handed to a local SMTP server (aiosmtpd, its own process), messages/s")
        print(f"{'path':55} {'msg/s':>9} {'vs raw':>7}")
        print(f"{'raw smtplib, one connection (baseline)':55} {raw:9.0f} {1.0:7.2f}")
        print(
            f"{'notify worker: claim, build MIME, send, record':55} {worker_only:9.0f} "
            f"{worker_only / raw:7.2f}"
        )
        print(
            f"{'notify enqueue + worker (one process)':55} {end_to_end:9.0f} "
            f"{end_to_end / raw:7.2f}"
        )
        print(f"# {sent} alerts sent by notify in {args.seconds:g} s")

        rows = rule_evaluation(args.rules, events, Path(tmp))
        print()
        print(f"# rule evaluation per incoming event ({events} events), milliseconds")
        print(f"{'path':55} {'mean':>8} {'p50':>8} {'p95':>8}")
        for name, values in rows:
            ms = [value * 1000 for value in values]
            print(
                f"{name:55} {statistics.fmean(ms):8.3f} {percentile(ms, 0.5):8.3f} "
                f"{percentile(ms, 0.95):8.3f}"
            )
    print()
    print(f"# done at {datetime.now(UTC) + timedelta(0):%Y-%m-%d %H:%M:%S} UTC")


if __name__ == "__main__":
    main()
