"""Quiet hours, the marketing window, backoff and the digest clock: plain rules on a clock the
test sets."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from notify.domain.delivery import (
    ALERT,
    DIGEST,
    EMAIL,
    MARKETING,
    OPT_OUT_TEXT,
    SMS,
    SUMMARY,
    BundledItem,
    RateLimit,
    RetryPolicy,
    digest_due,
    earliest_send,
    quiet_until,
    render_bundle,
    with_opt_out,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(text: str, tz: ZoneInfo = SHANGHAI) -> datetime:
    """A local time in ``tz``, as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=tz).astimezone(UTC)


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("2026-03-02 20:59:59", None),
        ("2026-03-02 21:00:00", "2026-03-03 08:00:00"),
        ("2026-03-02 23:30:00", "2026-03-03 08:00:00"),
        ("2026-03-03 00:00:00", "2026-03-03 08:00:00"),
        ("2026-03-03 07:59:59", "2026-03-03 08:00:00"),
        ("2026-03-03 08:00:00", None),
        ("2026-03-03 12:00:00", None),
    ],
)
def test_default_quiet_hours_run_from_21_to_08_in_shanghai(local, expected):
    found = quiet_until(at(local))
    assert found == (at(expected) if expected else None)


def test_quiet_hours_follow_the_recipients_time_zone():
    # 14:00 UTC is 22:00 in Shanghai (quiet) but 15:00 in Berlin (not)
    now = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    assert quiet_until(now, "Asia/Shanghai") == at("2026-03-03 08:00")
    assert quiet_until(now, "Europe/Berlin") is None
    berlin = ZoneInfo("Europe/Berlin")
    late = at("2026-03-02 23:00", berlin)
    assert quiet_until(late, "Europe/Berlin") == at("2026-03-03 08:00", berlin)


def test_an_unknown_time_zone_counts_as_shanghai():
    assert quiet_until(at("2026-03-02 22:00"), "Mars/Olympus") == at("2026-03-03 08:00")


def test_a_window_within_one_day_and_an_empty_window():
    lunch = (time(12, 0), time(13, 30))
    assert quiet_until(at("2026-03-02 12:10"), "Asia/Shanghai", *lunch) == at("2026-03-02 13:30")
    assert quiet_until(at("2026-03-02 13:30"), "Asia/Shanghai", *lunch) is None
    assert quiet_until(at("2026-03-02 23:00"), "Asia/Shanghai", time(0), time(0)) is None


@pytest.mark.parametrize(
    ("local", "channel", "kind", "critical", "expected"),
    [
        # an ordinary alert at night waits for 08:00, by day it leaves at once
        ("2026-03-02 22:15", EMAIL, ALERT, False, "2026-03-03 08:00"),
        ("2026-03-02 10:00", SMS, ALERT, False, "2026-03-02 10:00"),
        # a critical one ignores quiet hours
        ("2026-03-02 22:15", SMS, ALERT, True, "2026-03-02 22:15"),
        # marketing SMS: only 08:00–21:00, critical or not
        ("2026-03-02 06:00", SMS, MARKETING, True, "2026-03-02 08:00"),
        ("2026-03-02 20:59", SMS, MARKETING, False, "2026-03-02 20:59"),
        ("2026-03-02 21:00", SMS, MARKETING, False, "2026-03-03 08:00"),
    ],
)
def test_earliest_send(local, channel, kind, critical, expected):
    found = earliest_send(at(local), channel=channel, kind=kind, critical=critical)
    assert found == at(expected)


def test_marketing_sms_respects_the_window_even_with_narrow_quiet_hours():
    # the user's quiet hours are 23:00–06:00; marketing still waits until 08:00
    found = earliest_send(
        at("2026-03-02 06:30"),
        channel=SMS,
        kind=MARKETING,
        critical=False,
        quiet_start=time(23, 0),
        quiet_end=time(6, 0),
    )
    assert found == at("2026-03-02 08:00")
    # wider quiet hours win over the window: 20:00–09:00 holds a 08:30 SMS until 09:00
    found = earliest_send(
        at("2026-03-02 08:30"),
        channel=SMS,
        kind=MARKETING,
        critical=False,
        quiet_start=time(20, 0),
        quiet_end=time(9, 0),
    )
    assert found == at("2026-03-02 09:00")


def test_the_opt_out_text_is_added_once():
    assert with_opt_out("春季促销，全场九折") == f"春季促销，全场九折 {OPT_OUT_TEXT}"
    assert with_opt_out(f"春季促销 {OPT_OUT_TEXT}") == f"春季促销 {OPT_OUT_TEXT}"


def test_backoff_grows_exponentially_with_jitter_up_to_a_cap_and_a_limit():
    policy = RetryPolicy(max_attempts=5, base=timedelta(seconds=10), cap=timedelta(seconds=60))
    low, high = (lambda: 0.0), (lambda: 1.0)
    assert [policy.delay(n, low).total_seconds() for n in (1, 2, 3, 4, 5)] == [5, 10, 20, 30, 30]
    assert [policy.delay(n, high).total_seconds() for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 60, 60]
    now = at("2026-03-02 10:00")
    assert policy.next_try(4, now, low) == now + timedelta(seconds=30)
    assert policy.next_try(5, now, low) is None


def test_jitter_spreads_retries_of_the_same_attempt():
    import random

    seeded = random.Random(7)
    policy = RetryPolicy(base=timedelta(seconds=30))
    delays = {policy.delay(3, seeded.random) for _ in range(20)}
    assert len(delays) == 20
    assert all(timedelta(seconds=60) <= delay <= timedelta(seconds=120) for delay in delays)


def test_rate_limit_admits_up_to_its_limit_in_its_window():
    limit = RateLimit(limit=3, window=timedelta(minutes=10))
    assert [limit.admits(n) for n in range(5)] == [True, True, True, False, False]
    assert RateLimit(limit=0).admits(1000)
    now = at("2026-03-02 10:00")
    assert limit.window_start(now) == now - timedelta(minutes=10)


def test_the_digest_leaves_at_the_next_morning():
    assert digest_due(at("2026-03-02 15:00"), "Asia/Shanghai") == at("2026-03-03 08:00")
    assert digest_due(at("2026-03-02 07:00"), "Asia/Shanghai") == at("2026-03-02 08:00")


def test_a_bundle_lists_its_members_oldest_first():
    items = [
        BundledItem(
            f"发票 INV-{n:03d} 逾期",
            "请尽快催收",
            None,
            at("2026-03-02 10:00") + timedelta(minutes=n),
        )
        for n in (3, 1, 2)
    ]
    email = render_bundle(SUMMARY, EMAIL, items)
    assert email.subject == "提醒合并：另有 3 条提醒"
    assert email.text.index("INV-001") < email.text.index("INV-002") < email.text.index("INV-003")
    many = [BundledItem(f"提醒 {n}", "", None, at("2026-03-02 10:00")) for n in range(15)]
    sms = render_bundle(DIGEST, SMS, many)
    assert sms.subject == "今日提醒汇总：共 15 条"
    assert "提醒 9" in sms.text and "提醒 10" not in sms.text
    assert "等共 15 条" in sms.text
