"""The in-app inbox through the service: the caller's own items only (another user's item is a
404, as one that does not exist), newest first in keyset pages, unread filter and count, mark
one or all read."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crm_common.context import Principal
from crm_common.errors import Forbidden, NotFound, ValidationFailed
from notify.models.rules import InboxItem

from . import rules_support
from .rules_support import NOW, OTHER, SALES

db = rules_support.db
service = rules_support.service
act_as = rules_support.act_as


def add_items(db, user_id: str, count: int) -> list[str]:
    ids = []
    with db.session() as session:
        for n in range(count):
            item = InboxItem(
                user_id=user_id,
                alert_type="receivable_overdue",
                severity="warning",
                title=f"发票 INV-{n} 已逾期",
                body="华东机电设备有限公司",
                record_type="invoice",
                record_id=f"INV-{n}",
                created_at=NOW + timedelta(minutes=n),
            )
            session.add(item)
            session.flush()
            ids.append(str(item.id))
    return ids


def test_the_inbox_lists_the_callers_items_newest_first_in_pages(db, service, act_as):
    mine = add_items(db, "u-sales-01", 5)
    add_items(db, "u-sales-02", 3)
    act_as(SALES)
    first = service.list_inbox({"limit": "2"})
    assert [item["record_id"] for item in first["items"]] == ["INV-4", "INV-3"]
    assert first["items"][0]["read"] is False and first["items"][0]["read_at"] is None
    second = service.list_inbox({"limit": "2", "cursor": first["next_cursor"]})
    third = service.list_inbox({"limit": "2", "cursor": second["next_cursor"]})
    assert [item["record_id"] for item in second["items"] + third["items"]] == [
        "INV-2",
        "INV-1",
        "INV-0",
    ]
    assert third["next_cursor"] is None
    assert {item["id"] for item in first["items"] + second["items"] + third["items"]} == set(mine)
    assert service.inbox_unread_count() == {"unread": 5}


def test_marking_read_one_and_all(db, service, act_as):
    mine = add_items(db, "u-sales-01", 3)
    add_items(db, "u-sales-02", 2)
    act_as(SALES)
    read = service.mark_inbox_item_read(mine[0])
    assert read["read"] is True and read["read_at"] is not None
    assert service.mark_inbox_item_read(mine[0])["read_at"] == read["read_at"]  # once
    assert service.inbox_unread_count() == {"unread": 2}
    unread = service.list_inbox({"unread": "true"})["items"]
    assert {item["id"] for item in unread} == set(mine[1:])
    assert service.mark_inbox_read() == {"marked": 2}
    assert service.inbox_unread_count() == {"unread": 0}
    assert service.list_inbox({"unread": "true"})["items"] == []
    assert len(service.list_inbox({})["items"]) == 3
    act_as(OTHER)
    assert service.inbox_unread_count() == {"unread": 2}  # another user's stay unread


def test_another_users_item_is_not_found(db, service, act_as):
    [theirs] = add_items(db, "u-sales-02", 1)
    act_as(SALES)
    with pytest.raises(NotFound):
        service.mark_inbox_item_read(theirs)
    with pytest.raises(NotFound):
        service.mark_inbox_item_read("not-an-id")
    assert service.list_inbox({})["items"] == []
    act_as(OTHER)
    assert service.list_inbox({})["items"][0]["read"] is False


def test_bad_queries_are_refused_and_services_have_no_inbox(db, service, act_as):
    act_as(SALES)
    with pytest.raises(ValidationFailed) as refused:
        service.list_inbox({"cursor": "garbage"})
    assert "cursor" in refused.value.field_errors
    with pytest.raises(ValidationFailed) as refused:
        service.list_inbox({"color": "red"})
    assert "color" in refused.value.field_errors
    act_as(Principal.for_service("sales"))
    with pytest.raises(Forbidden):
        service.list_inbox({})
