"""Times are UTC-aware everywhere in the org domain."""

from __future__ import annotations

from datetime import UTC, datetime


def aware(moment: datetime | None) -> datetime | None:
    """A stored time as UTC-aware (SQLite gives back naive values that are UTC)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
