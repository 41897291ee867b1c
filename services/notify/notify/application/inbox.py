"""The in-app inbox and notification preferences: each user reads and changes only their own
(another user's inbox item is not found, exactly as one that does not exist). Any signed-in
user may; a service identity has no inbox.

Preferences: per alert type (``*`` for every type) and channel, on or off and ``immediate`` or
``daily`` (held for the daily summary; a critical alert never is); the time zone and quiet
hours email and SMS wait out (default 21:00–08:00, Asia/Shanghai). A user who never saved
preferences has the defaults; saving replaces them all (``version`` guards against a lost
update: send the one read).
"""

from __future__ import annotations

from datetime import time
from typing import Any

from crm_common.application import UseCases
from crm_common.errors import Forbidden
from crm_common.models import check_version
from crm_common.schemas import load
from notify.domain.rules import parse_daily_at
from notify.models.rules import InboxItem, NotificationPreference
from notify.repository import rules as repository
from notify.schemas.rules import (
    InboxItemSchema,
    InboxQuerySchema,
    PreferencesInputSchema,
    PreferencesSchema,
)

DEFAULT_TIME_ZONE = "Asia/Shanghai"
DEFAULT_QUIET_START = time(21, 0)
DEFAULT_QUIET_END = time(8, 0)

item_schema = InboxItemSchema()
preferences_schema = PreferencesSchema()


def dump_item(item: InboxItem) -> dict[str, Any]:
    dumped: dict[str, Any] = item_schema.dump(
        {
            "id": item.id,
            "rule_id": item.rule_id,
            "alert_type": item.alert_type,
            "severity": item.severity,
            "title": item.title,
            "body": item.body,
            "link": item.link,
            "record_type": item.record_type,
            "record_id": item.record_id,
            "created_at": item.created_at,
            "read_at": item.read_at,
            "read": item.read_at is not None,
        }
    )
    return dumped


class Personal(UseCases):
    """Use cases on the caller's own things."""

    @property
    def user_id(self) -> str:
        if self.principal.is_service:
            raise Forbidden("a service has no inbox or notification preferences")
        return self.principal.user_id


class Inbox(Personal):
    def list(self, query: Any) -> dict[str, Any]:
        params = load(InboxQuerySchema(), query or {})
        page = repository.inbox_page(
            self.session, self.user_id, params["unread"], params.get("cursor"), params.get("limit")
        )
        return {"items": [dump_item(item) for item in page.items], "next_cursor": page.next_cursor}

    def unread_count(self) -> dict[str, Any]:
        return {"unread": repository.unread_count(self.session, self.user_id)}

    def mark_read(self, item_id: Any) -> dict[str, Any]:
        item = repository.inbox_item(self.session, self.user_id, item_id)
        if item.read_at is None:
            item.read_at = self.context.now
            self.session.flush()
        return dump_item(item)

    def mark_all_read(self) -> dict[str, Any]:
        return {"marked": repository.mark_all_read(self.session, self.user_id, self.context.now)}


def _hhmm(value: time) -> str:
    return value.strftime("%H:%M")


class Preferences(Personal):
    def get(self) -> dict[str, Any]:
        stored = repository.preferences(self.session, self.user_id)
        if stored is None:
            return self._dump(
                {
                    "user_id": self.user_id,
                    "time_zone": DEFAULT_TIME_ZONE,
                    "quiet_start": _hhmm(DEFAULT_QUIET_START),
                    "quiet_end": _hhmm(DEFAULT_QUIET_END),
                    "settings": [],
                    "version": 0,
                    "updated_at": None,
                }
            )
        return self._dump_row(stored)

    def put(self, data: Any, expected_version: Any = None) -> dict[str, Any]:
        values = load(PreferencesInputSchema(), data or {})
        version = expected_version if expected_version is not None else values.get("version")
        stored = repository.preferences(self.session, self.user_id)
        settings = self._merged(values["settings"])
        if stored is None:
            if version not in (None, 0, "0"):
                check_version_of(0, version)
            stored = NotificationPreference(user_id=self.user_id, version=1)
            self.session.add(stored)
        else:
            if version is not None:
                check_version_of(stored.version, version)
            stored.version += 1
        stored.time_zone = values["time_zone"]
        stored.quiet_start = parse_daily_at(values["quiet_start"])
        stored.quiet_end = parse_daily_at(values["quiet_end"])
        stored.settings = settings
        stored.updated_at = self.context.now
        self.session.flush()
        return self._dump_row(stored)

    @staticmethod
    def _merged(settings: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One setting per alert type and channel (the last one given wins), in order."""
        kept: dict[tuple[str, str], dict[str, Any]] = {}
        for setting in settings:
            kept[(setting["alert_type"], setting["channel"])] = {
                "alert_type": setting["alert_type"],
                "channel": setting["channel"],
                "enabled": setting["enabled"],
                "digest": setting["digest"],
            }
        return list(kept.values())

    def _dump_row(self, stored: NotificationPreference) -> dict[str, Any]:
        return self._dump(
            {
                "user_id": stored.user_id,
                "time_zone": stored.time_zone,
                "quiet_start": _hhmm(stored.quiet_start),
                "quiet_end": _hhmm(stored.quiet_end),
                "settings": stored.settings or [],
                "version": stored.version,
                "updated_at": stored.updated_at,
            }
        )

    @staticmethod
    def _dump(record: dict[str, Any]) -> dict[str, Any]:
        dumped: dict[str, Any] = preferences_schema.dump(record)
        return dumped


class _Versioned:
    def __init__(self, version: int) -> None:
        self.version = version


def check_version_of(current: int, expected: Any) -> None:
    """A stale preferences version is a 409, as for any record."""
    try:
        wanted = int(expected)
    except (TypeError, ValueError):
        wanted = -1
    check_version(_Versioned(current), wanted)  # type: ignore[arg-type]
