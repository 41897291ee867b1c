"""Role recipients: notify keeps the role codes org's people carry (replaced with the person, by
version) and a ``role`` recipient resolves to the active users holding that role."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from crm_common.application import UseCaseContext
from crm_common.outbox import OutboxWriter
from notify.application.alerts import Alerts, RuleIndex
from notify.application.read_models import ReadModels
from notify.application.rules import Rules
from notify.models import OutboxMessage
from notify.models.rules import InboxItem
from notify.repository import rules as repository

from . import rules_support
from .rules_support import ADMIN, NOW, envelope, event_rule, invoice_overdue

db = rules_support.db

BRANCH_EAST = {
    "id": "p-branch-east",
    "user_id": "u-branch-east",
    "code": "p-branch-east",
    "name": "李华东",
    "department_id": "d-east",
}


def holders(db, role_code: str) -> list[str]:
    with db.session() as session:
        return sorted(person.user_id for person in repository.people_with_role(session, role_code))


def keep(db, **person: Any) -> bool:
    with db.session() as session:
        return ReadModels(session, NOW).keep_person({**BRANCH_EAST, **person})


def test_the_holders_of_a_role_are_the_people_whose_user_has_its_code(db):
    assert holders(db, "sales_rep") == ["u-sales-01", "u-sales-02"]
    assert holders(db, "sales_manager") == ["u-branch-east", "u-left"]  # who left is listed
    assert holders(db, "nobody_has_this") == []


def test_role_codes_follow_the_newest_version_of_the_person(db):
    assert keep(db, version=3, role_codes=["sales_manager"])
    assert holders(db, "branch_manager") == []
    assert holders(db, "sales_manager") == ["u-branch-east", "u-left"]

    assert not keep(db, version=2, role_codes=["branch_manager"])  # older: ignored
    assert holders(db, "branch_manager") == []

    assert not keep(db, version=3, role_codes=["general_manager", "sales_manager"])
    assert holders(db, "general_manager") == ["u-branch-east", "u-ceo"]  # same version: read again

    assert keep(db, version=4)  # an org that sends no role codes: none
    assert "u-branch-east" not in holders(db, "sales_manager") + holders(db, "general_manager")


def test_a_person_who_lost_their_user_holds_no_role(db):
    assert keep(db, version=2, user_id=None, role_codes=[])
    assert holders(db, "branch_manager") == []


def test_a_role_rule_alerts_the_active_holders_only(db):
    with db.session() as session:
        Rules(UseCaseContext(session, OutboxWriter(OutboxMessage, "notify"), ADMIN, NOW)).create(
            event_rule(
                recipients=[{"type": "role", "role": "sales_manager"}, {"type": "owner"}],
                channels={"inbox": {"subject": "{code}", "body": "{recipient_name}"}},
            )
        )
    with db.session() as session:
        Alerts(session, NOW, RuleIndex()).on_event(
            "sales", envelope("sales", "invoice_overdue", invoice_overdue())
        )
    with db.session() as session:
        alerted = {item.user_id: item.body for item in session.scalars(select(InboxItem))}
    # the branch manager holds sales_manager; who left holds it too but is not alerted
    assert alerted == {"u-branch-east": "李华东", "u-sales-01": "张伟"}
