"""Notification preferences: the caller's own, the defaults until saved, replaced whole with a
version guard; the choice per alert type and channel, critical alerts never held for the
digest."""

from __future__ import annotations

import pytest

from crm_common.errors import Conflict, ValidationFailed
from notify.domain.rules import ChannelChoice, channel_choice

from . import rules_support
from .rules_support import OTHER, SALES

db = rules_support.db
service = rules_support.service
act_as = rules_support.act_as


def test_the_defaults_until_saved(service, act_as):
    act_as(SALES)
    assert service.get_notification_preferences() == {
        "user_id": "u-sales-01",
        "time_zone": "Asia/Shanghai",
        "quiet_start": "21:00",
        "quiet_end": "08:00",
        "settings": [],
        "version": 0,
        "updated_at": None,
    }


def test_saving_replaces_them_for_the_caller_only(service, act_as):
    act_as(SALES)
    saved = service.put_notification_preferences(
        {
            "time_zone": "Asia/Urumqi",
            "quiet_start": "22:30",
            "quiet_end": "07:15",
            "settings": [
                {"alert_type": "*", "channel": "sms", "enabled": False},
                {"alert_type": "receivable_overdue", "channel": "email", "digest": "daily"},
                {"alert_type": "*", "channel": "sms", "enabled": True},
            ],
            "version": 0,
        }
    )
    assert saved["version"] == 1 and saved["quiet_start"] == "22:30"
    assert saved["time_zone"] == "Asia/Urumqi"
    assert saved["settings"] == [
        {"alert_type": "*", "channel": "sms", "enabled": True, "digest": "immediate"},
        {
            "alert_type": "receivable_overdue",
            "channel": "email",
            "enabled": True,
            "digest": "daily",
        },
    ]
    assert service.get_notification_preferences() == saved
    again = service.put_notification_preferences({"settings": []}, 1)
    assert again["version"] == 2 and again["quiet_start"] == "21:00"
    act_as(OTHER)
    assert service.get_notification_preferences()["version"] == 0


def test_a_stale_save_is_a_conflict(service, act_as):
    act_as(SALES)
    service.put_notification_preferences({"settings": []})
    with pytest.raises(Conflict):
        service.put_notification_preferences({"settings": [], "version": 0})
    with pytest.raises(Conflict):
        service.put_notification_preferences({"settings": []}, 7)
    assert service.get_notification_preferences()["version"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"quiet_start": "9pm"}, "quiet_start"),
        ({"quiet_end": "24:00"}, "quiet_end"),
        ({"settings": [{"alert_type": "*", "channel": "fax"}]}, "settings.0.channel"),
        (
            {"settings": [{"alert_type": "*", "channel": "sms", "digest": "weekly"}]},
            "settings.0.digest",
        ),
        ({"settings": [{"channel": "sms"}]}, "settings.0.alert_type"),
        ({"user_id": "u-sales-02"}, "user_id"),
    ],
)
def test_bad_preferences_are_a_422_naming_the_field(service, act_as, body, field):
    act_as(SALES)
    with pytest.raises(ValidationFailed) as refused:
        service.put_notification_preferences(body)
    assert field in refused.value.field_errors


SETTINGS = [
    {"alert_type": "*", "channel": "sms", "enabled": False, "digest": "immediate"},
    {"alert_type": "*", "channel": "email", "enabled": True, "digest": "daily"},
    {"alert_type": "sla", "channel": "sms", "enabled": True, "digest": "immediate"},
    {"alert_type": "contract_expiry", "channel": "inbox", "enabled": False, "digest": "immediate"},
]


@pytest.mark.parametrize(
    ("alert_type", "channel", "severity", "expected"),
    [
        ("receivable_overdue", "sms", "warning", ChannelChoice(False, "immediate")),
        ("sla", "sms", "warning", ChannelChoice(True, "immediate")),
        ("receivable_overdue", "email", "warning", ChannelChoice(True, "daily")),
        ("receivable_overdue", "email", "critical", ChannelChoice(True, "immediate")),
        ("contract_expiry", "inbox", "info", ChannelChoice(False, "immediate")),
        ("receivable_overdue", "inbox", "info", ChannelChoice(True, "immediate")),
    ],
)
def test_the_most_specific_setting_decides(alert_type, channel, severity, expected):
    assert channel_choice(SETTINGS, alert_type, channel, severity) == expected
    assert channel_choice([], alert_type, channel, severity) == ChannelChoice()
