"""The delivery worker: sends due deliveries after the transaction that stored them committed.

One pass (:meth:`DeliveryWorker.run_once`, the service's timer calls it every second):

1. In one short transaction, claim up to ``batch`` due rows (``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL, so workers of several processes never take the same row): each becomes
   ``sending`` with a lease, its attempt counted and logged. A summary or digest gets its text
   from its members now.
2. Outside any transaction, hand each message to its channel's sender. A message whose last try
   ended without an answer (a timeout, or a worker that stopped mid-send: its lease ran out) is
   first looked up at the provider, and not sent again when the provider has it.
3. In a second transaction, record each outcome: ``sent`` with the provider's id; a transient
   failure queued again after a backoff with jitter, until ``RetryPolicy.max_attempts``; a
   permanent failure ``failed`` at once with its reason.

Metrics: ``crm_notify_deliveries_total{channel,outcome}``, ``crm_notify_delivery_retries_total
{channel}`` and ``crm_notify_queue_lag_seconds{channel}`` (how long the oldest due delivery has
waited, measured at each pass).
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from prometheus_client import Counter, Gauge
from sqlalchemy import select
from sqlalchemy.orm import Session

from notify.channels import Outgoing, Sender, Sent
from notify.domain import delivery as rules
from notify.models.deliveries import Delivery, DeliveryAttempt
from notify.repository import deliveries as repository

log = logging.getLogger(__name__)

DELIVERIES = Counter(
    "crm_notify_deliveries_total",
    "Delivery attempts by channel and outcome (sent, retry, failed, found)",
    ["channel", "outcome"],
)
RETRIES = Counter(
    "crm_notify_delivery_retries_total", "Deliveries queued again after a failure", ["channel"]
)
QUEUE_LAG = Gauge(
    "crm_notify_queue_lag_seconds",
    "How long the oldest due delivery of a channel has waited to be sent",
    ["channel"],
)

SENT = "sent"
FOUND = "found"
TRANSIENT = "transient"
PERMANENT = "permanent"
UNCERTAIN = "uncertain"
IN_FLIGHT = "sending"


class Sessions(Protocol):
    def session(self) -> AbstractContextManager[Session]: ...


@dataclass(frozen=True)
class Claimed:
    delivery_id: uuid.UUID
    channel: str
    attempt: int
    """The count of tries since it was queued (what the retry policy limits)."""
    number: int
    """The number of this try in the delivery's attempt log (a manual retry continues it)."""
    check_first: bool
    message: Outgoing
    bundle: bool


Outcome = tuple[Claimed, Sent | rules.DeliveryFailure, bool]
"""What came of one try: the answer or the failure, and whether a look-up found it."""


@dataclass
class PassResult:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    found: int = 0
    outcomes: dict[str, str] = field(default_factory=dict)

    @property
    def handled(self) -> int:
        return self.sent + self.retried + self.failed + self.found


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class DeliveryWorker:
    def __init__(
        self,
        db: Sessions,
        senders: Mapping[str, Sender],
        *,
        policy: rules.RetryPolicy | None = None,
        rand: Callable[[], float] = random.random,
        batch: int = 50,
        lease: timedelta = timedelta(minutes=2),
    ) -> None:
        self.db = db
        self.senders = senders
        self.policy = policy or rules.RetryPolicy()
        self.rand = rand
        self.batch = batch
        self.lease = lease

    def run_once(self, now: datetime) -> PassResult:
        """Send what is due at ``now`` (one batch)."""
        now = now.astimezone(UTC)
        claimed = self.claim(now)
        result = PassResult()
        if not claimed:
            return result
        by_channel: dict[str, list[Claimed]] = {}
        for item in claimed:
            by_channel.setdefault(item.channel, []).append(item)
        outcomes: list[Outcome] = []
        try:
            # each channel in a (green) thread of its own: a slow SMS provider does not hold
            # up the email, and each sender keeps to one thread
            with ThreadPoolExecutor(max_workers=len(by_channel)) as pool:
                for done in pool.map(self._attempt_all, by_channel.values()):
                    outcomes.extend(done)
        finally:
            for sender in self.senders.values():
                sender.close()
        ids = [item.delivery_id for item in claimed]
        with self.db.session() as session:
            rows = {
                row.id: row for row in session.scalars(select(Delivery).where(Delivery.id.in_(ids)))
            }
            logged = {
                (attempt.delivery_id, attempt.number): attempt
                for attempt in session.scalars(
                    select(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(ids))
                )
            }
            for item, outcome, looked_up in outcomes:
                row = rows.get(item.delivery_id)
                attempt = logged.get((item.delivery_id, item.number))
                self._record(session, row, attempt, item, outcome, looked_up, now, result)
        return result

    def run_until_idle(self, now: datetime, max_passes: int = 100) -> PassResult:
        """Passes at ``now`` until nothing more is due (tests and the bench)."""
        total = PassResult()
        for _ in range(max_passes):
            result = self.run_once(now)
            if not result.handled:
                break
            total.sent += result.sent
            total.retried += result.retried
            total.failed += result.failed
            total.found += result.found
            total.outcomes.update(result.outcomes)
        return total

    def measure_lag(self, now: datetime) -> dict[str, float]:
        with self.db.session() as session:
            lag = repository.queue_lag(session, now.astimezone(UTC))
        for channel in rules.CHANNELS:
            QUEUE_LAG.labels(channel).set(lag.get(channel, 0.0))
        return lag

    # -- the three steps ---------------------------------------------------------------------

    def claim(self, now: datetime) -> list[Claimed]:
        claimed: list[Claimed] = []
        with self.db.session() as session:
            for row in repository.claim_due(session, now, self.batch):
                interrupted = row.status == rules.SENDING  # its worker stopped mid-send
                never_tried = not interrupted and row.attempts == 0 and row.last_error is None
                previous = None if never_tried else self._last_attempt(session, row.id)
                check_first = interrupted or (
                    previous is not None and previous.outcome in (UNCERTAIN, IN_FLIGHT)
                )
                if previous is not None and previous.outcome == IN_FLIGHT:
                    previous.outcome = UNCERTAIN
                    previous.error = "the worker stopped before the answer was recorded"
                    previous.finished_at = now
                first = None if never_tried else self._first_attempt(session, row.id)
                if row.kind in (rules.SUMMARY, rules.DIGEST):
                    self._render_bundle(session, row)
                row.status = rules.SENDING
                row.attempts += 1
                row.lease_until = now + self.lease
                row.updated_at = now
                number = (previous.number if previous is not None else 0) + 1
                session.add(
                    DeliveryAttempt(
                        delivery_id=row.id,
                        number=number,
                        started_at=now,
                        outcome=IN_FLIGHT,
                    )
                )
                claimed.append(
                    Claimed(
                        delivery_id=row.id,
                        channel=row.channel,
                        attempt=row.attempts,
                        number=number,
                        check_first=check_first,
                        bundle=row.kind in (rules.SUMMARY, rules.DIGEST),
                        message=Outgoing(
                            delivery_id=str(row.id),
                            address=row.address or "",
                            recipient_name=row.recipient_name,
                            subject=row.subject,
                            text=row.text,
                            html=row.html,
                            sms_template=row.sms_template,
                            sms_params=dict(row.sms_params or {}),
                            link=row.link,
                            kind=row.kind,
                            created_at=_utc(row.created_at),
                            first_sent_at=_utc(first.started_at) if first else now,
                        ),
                    )
                )
        return claimed

    def _attempt_all(self, items: list[Claimed]) -> list[Outcome]:
        return [self._attempt(item) for item in items]

    def _attempt(self, item: Claimed) -> Outcome:
        sender = self.senders.get(item.channel)
        if sender is None:
            return item, rules.PermanentFailure(f"no sender for channel {item.channel}"), False
        try:
            if item.check_first:
                found = sender.lookup(item.message)
                if found is not None:
                    return item, found, True
            return item, sender.send(item.message), False
        except rules.DeliveryFailure as failure:
            return item, failure, False
        except Exception as exc:  # a bug in an adapter must not stop the other deliveries
            log.exception("sending delivery %s failed unexpectedly", item.delivery_id)
            return item, rules.TransientFailure(f"{type(exc).__name__}: {exc}"), False

    def _record(
        self,
        session: Session,
        row: Delivery | None,
        attempt: DeliveryAttempt | None,
        item: Claimed,
        outcome: Sent | rules.DeliveryFailure,
        looked_up: bool,
        now: datetime,
        result: PassResult,
    ) -> None:
        if row is None or row.status != rules.SENDING or row.attempts != item.attempt:
            return  # taken over by another worker after our lease ran out
        row.lease_until = None
        row.updated_at = now
        if isinstance(outcome, Sent):
            row.status = rules.SENT
            row.provider = outcome.provider
            row.provider_id = outcome.provider_id
            row.sent_at = now
            row.last_error = None
            label = FOUND if looked_up else SENT
            if attempt is not None:
                attempt.outcome = label
                attempt.provider_id = outcome.provider_id
                attempt.finished_at = now
            if item.bundle:
                repository.mark_members(session, row.id, rules.SENT, now)
            if looked_up:
                result.found += 1
            else:
                result.sent += 1
            result.outcomes[str(row.id)] = label
            DELIVERIES.labels(row.channel, label).inc()
            return
        kind = (
            UNCERTAIN
            if isinstance(outcome, rules.UncertainOutcome)
            else (TRANSIENT if outcome.transient else PERMANENT)
        )
        if attempt is not None:
            attempt.outcome = kind
            attempt.error = outcome.reason
            attempt.finished_at = now
        row.last_error = outcome.reason
        next_try = self.policy.next_try(row.attempts, now, self.rand) if outcome.transient else None
        if next_try is not None:
            row.status = rules.QUEUED
            row.not_before = next_try
            result.retried += 1
            result.outcomes[str(row.id)] = "retry"
            DELIVERIES.labels(row.channel, "retry").inc()
            RETRIES.labels(row.channel).inc()
            return
        row.status = rules.FAILED
        row.failed_at = now
        if outcome.transient:
            row.last_error = f"gave up after {row.attempts} attempts: {outcome.reason}"[:500]
        if item.bundle:
            repository.mark_members(session, row.id, rules.FAILED, now)
        result.failed += 1
        result.outcomes[str(row.id)] = "failed"
        DELIVERIES.labels(row.channel, "failed").inc()

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _last_attempt(session: Session, delivery_id: uuid.UUID) -> DeliveryAttempt | None:
        return session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id == delivery_id)
            .order_by(DeliveryAttempt.number.desc())
            .limit(1)
        ).first()

    @staticmethod
    def _first_attempt(session: Session, delivery_id: uuid.UUID) -> DeliveryAttempt | None:
        return session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id == delivery_id)
            .order_by(DeliveryAttempt.number)
            .limit(1)
        ).first()

    @staticmethod
    def _render_bundle(session: Session, row: Delivery) -> None:
        members = repository.bundle_members(session, row.id)
        rendered = rules.render_bundle(
            row.kind,
            row.channel,
            [
                rules.BundledItem(
                    subject=member.subject,
                    text=member.text,
                    link=member.link,
                    created_at=_utc(member.created_at) or datetime.now(UTC),
                )
                for member in members
            ],
        )
        row.subject = rendered.subject[:300]
        row.text = rendered.text
        row.sms_params = {
            "count": str(len(members)),
            "first": (members[0].subject if members else "")[:20],
        }
