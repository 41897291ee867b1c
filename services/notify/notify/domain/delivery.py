"""Rules of delivering a message by email or SMS: quiet hours, the marketing window, retries
with backoff, what a failure means, rate limits that fold a storm into one summary, and the
daily digest. Plain Python: every function takes the clock and the randomness it needs."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIME_ZONE = "Asia/Shanghai"
DEFAULT_QUIET_START = time(21, 0)
DEFAULT_QUIET_END = time(8, 0)
MARKETING_START = time(8, 0)
"""Marketing SMS go out between 08:00 and 21:00 in the recipient's time zone, whatever the
recipient's own quiet hours say (they may only narrow it)."""
MARKETING_END = time(21, 0)
OPT_OUT_TEXT = "回T退订"
"""What every marketing SMS ends with: the carriers' opt-out instruction."""

EMAIL = "email"
SMS = "sms"
CHANNELS = (EMAIL, SMS)

QUEUED = "queued"
SENDING = "sending"
SENT = "sent"
DELIVERED = "delivered"
FAILED = "failed"
BUNDLED = "bundled"
"""Folded into a summary or a digest: it goes out as part of that delivery, not on its own."""
STATUSES = (QUEUED, SENDING, SENT, DELIVERED, FAILED, BUNDLED)
FINAL_STATUSES = (DELIVERED, FAILED)

ALERT = "alert"
MARKETING = "marketing"
SUMMARY = "summary"
DIGEST = "digest"
KINDS = (ALERT, MARKETING, SUMMARY, DIGEST)


# -- failures --------------------------------------------------------------------------------


class DeliveryFailure(Exception):
    """A send that did not go through. ``reason`` is what the admin reads."""

    transient: bool = True

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason[:500]


class TransientFailure(DeliveryFailure):
    """Worth another try later: connection refused, a 4xx from SMTP, a 5xx, throttling."""

    transient = True


class PermanentFailure(DeliveryFailure):
    """Trying again gives the same answer: an invalid number, a rejected template, SMTP 5xx."""

    transient = False


class UncertainOutcome(TransientFailure):
    """The request left but no answer came (a read timeout): the message may have gone out.
    It is not sent again before the provider has been asked whether it arrived."""


# -- quiet hours -----------------------------------------------------------------------------


def zone(name: str | None) -> ZoneInfo:
    """The time zone called ``name``; the business's own when unknown or empty."""
    try:
        return ZoneInfo(name or DEFAULT_TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIME_ZONE)


def _in_window(clock: time, start: time, end: time) -> bool:
    """Whether ``clock`` is in [start, end), a window that may cross midnight."""
    if start == end:
        return False
    if start < end:
        return start <= clock < end
    return clock >= start or clock < end


def window_end(now: datetime, time_zone: str | None, start: time, end: time) -> datetime | None:
    """When the window [start, end) in ``time_zone`` that ``now`` falls in ends (UTC), or None
    when ``now`` is outside it. A window with start == end is empty."""
    tz = zone(time_zone)
    local = now.astimezone(tz)
    clock = local.time().replace(tzinfo=None)
    if not _in_window(clock, start, end):
        return None
    day = local.date()
    if clock >= end:  # the window crosses midnight and we are before it: it ends tomorrow
        day = day + timedelta(days=1)
    ends = datetime.combine(day, end, tzinfo=tz)
    return ends.astimezone(UTC)


def quiet_until(
    now: datetime,
    time_zone: str | None = DEFAULT_TIME_ZONE,
    quiet_start: time = DEFAULT_QUIET_START,
    quiet_end: time = DEFAULT_QUIET_END,
) -> datetime | None:
    """The end of the recipient's quiet period when ``now`` falls in it (UTC), else None."""
    return window_end(now, time_zone, quiet_start, quiet_end)


def earliest_send(
    now: datetime,
    *,
    channel: str,
    kind: str,
    critical: bool,
    time_zone: str | None = DEFAULT_TIME_ZONE,
    quiet_start: time = DEFAULT_QUIET_START,
    quiet_end: time = DEFAULT_QUIET_END,
) -> datetime:
    """When a message may leave: ``now``, or the end of the recipient's quiet hours for a
    non-critical message, or 08:00 for a marketing SMS outside 08:00–21:00. Deferred, never
    dropped. A critical alert ignores quiet hours; marketing is never critical."""
    if critical and kind != MARKETING:
        return now
    moment = now
    # Apply both rules until neither moves the time (a marketing window may end in quiet hours).
    for _ in range(4):
        later = quiet_until(moment, time_zone, quiet_start, quiet_end)
        if kind == MARKETING and channel == SMS:
            closed = window_end(moment, time_zone, MARKETING_END, MARKETING_START)
            if closed is not None and (later is None or closed > later):
                later = closed
        if later is None or later <= moment:
            break
        moment = later
    return moment


def with_opt_out(text: str) -> str:
    """A marketing SMS's text ending with the opt-out instruction (added once)."""
    stripped = text.rstrip()
    if stripped.endswith(OPT_OUT_TEXT):
        return stripped
    return f"{stripped} {OPT_OUT_TEXT}"


# -- retries ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: attempt n waits between half of and the whole of
    ``base * 2**(n-1)`` (at most ``cap``); after ``max_attempts`` tries the delivery fails."""

    max_attempts: int = 6
    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> timedelta:
        ceiling: timedelta = min(self.cap, self.base * (2 ** max(0, attempt - 1)))
        half: timedelta = ceiling / 2
        return half + half * float(rand())

    def next_try(
        self, attempt: int, now: datetime, rand: Callable[[], float] = random.random
    ) -> datetime | None:
        """When to try again after failed attempt number ``attempt``; None when it was the
        last one."""
        if attempt >= self.max_attempts:
            return None
        return now + self.delay(attempt, rand)


# -- rate limits -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RateLimit:
    """At most ``limit`` messages per recipient and channel within ``window``; what comes
    beyond goes out as one summary at the end of the window."""

    limit: int = 5
    window: timedelta = timedelta(minutes=10)

    def admits(self, sent_in_window: int) -> bool:
        return self.limit <= 0 or sent_in_window < self.limit

    def window_start(self, now: datetime) -> datetime:
        return now - self.window


# -- summaries and digests -------------------------------------------------------------------


@dataclass(frozen=True)
class BundledItem:
    subject: str
    text: str
    link: str | None
    created_at: datetime


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None = None


SUMMARY_LINES = 10
"""A summary SMS lists at most this many subjects; email lists them all."""


def digest_due(now: datetime, time_zone: str | None, at: time = DEFAULT_QUIET_END) -> datetime:
    """The next daily digest time ``at`` in ``time_zone`` after ``now`` (UTC)."""
    tz = zone(time_zone)
    local = now.astimezone(tz)
    due = datetime.combine(local.date(), at, tzinfo=tz)
    if due <= local:
        due = datetime.combine(local.date() + timedelta(days=1), at, tzinfo=tz)
    return due.astimezone(UTC)


def digest_day(due: datetime, time_zone: str | None) -> date:
    return due.astimezone(zone(time_zone)).date()


def render_bundle(kind: str, channel: str, items: Sequence[BundledItem]) -> Rendered:
    """The one message standing for ``items``: a storm's summary or the daily digest."""
    ordered = sorted(items, key=lambda item: item.created_at)
    count = len(ordered)
    subject = f"今日提醒汇总：共 {count} 条" if kind == DIGEST else f"提醒合并：另有 {count} 条提醒"
    if channel == SMS:
        shown = ordered[:SUMMARY_LINES]
        lines = [f"{index}. {item.subject}" for index, item in enumerate(shown, 1)]
        if count > len(shown):
            lines.append(f"……等共 {count} 条，请登录系统查看")
        return Rendered(subject, "\n".join([subject, *lines]))
    body = [subject, ""]
    for index, item in enumerate(ordered, 1):
        body.append(f"{index}. {item.subject}")
        if item.text and item.text != item.subject:
            body.append(f"   {item.text}")
        if item.link:
            body.append(f"   {item.link}")
    return Rendered(subject, "\n".join(body))
