"""Expenses through the sales service: submitted, approved level by level by the managers the
org chart names (the copy of it sales keeps), rejected, paid; nobody approves their own; lists,
totals, cost of sale and the configurable categories."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from nameko.testing.services import worker_factory
from sqlalchemy import insert

from crm_common.context import Principal
from crm_common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from crm_common.outbox import OutboxWriter
from sales.application.expenses import parse_threshold
from sales.domain.expenses import DEFAULT_CATEGORIES, DEFAULT_SECOND_LEVEL_AMOUNT
from sales.domain.money import Money
from sales.models import ExpenseCategory, Opportunity, OutboxMessage, SalesProcess
from sales.repository.opportunities import business_year
from sales.service import SalesService

from .sample_org import (
    ADMIN,
    COLLEAGUE,
    EAST_MACHINERY,
    GUANGZHOU_HEAVY,
    MANAGER,
    MANAGER_PERMISSIONS,
    OLD_EAST,
    OTHER_OFFICE,
    SALES,
    SHANGHAI_PRECISION,
)

YEAR = business_year()
EAST_MANAGER = Principal(
    user_id="u-east-mgr",
    department_id="d-east",
    permissions=MANAGER_PERMISSIONS,
    grants=({"departments": ["d-east"]},),
)
"""李经理 approves the second level of 上海办's large expenses; his grants alone would not
show him their expenses."""
BOSS = Principal(
    user_id="u-boss", department_id="d-sales", permissions=MANAGER_PERMISSIONS, grants=({},)
)
SOUTH_MANAGER = Principal(
    user_id="u-south-mgr",
    department_id="d-south",
    permissions=MANAGER_PERMISSIONS,
    grants=({"departments": ["d-south", "d-south-gz"]},),
)
FINANCE = Principal(
    user_id="u-finance",
    department_id="d-sales",
    permissions=("expense:read", "expense:pay"),
    grants=({},),
)
TODAY = date.today()


@pytest.fixture
def service(expense_service):
    return expense_service


@pytest.fixture
def submit(service):
    def submit(amount="380.00", category="travel", **fields):
        data = {
            "expense_category": category,
            "amount": amount,
            "spent_on": str(TODAY),
            "customer_id": str(EAST_MACHINERY),
            **fields,
        }
        return service.submit_expense(data)

    return submit


@pytest.fixture
def opportunity(db):
    def add(customer=EAST_MACHINERY, owner="u-sales-01"):
        with db.session() as session:
            process = SalesProcess(id=uuid.uuid4(), code=f"p{uuid.uuid4().hex[:8]}", name="流程")
            session.add(process)
            session.flush()
            row = {
                "id": uuid.uuid4(),
                "code": f"OPP-2026-{uuid.uuid4().int % 999_999 + 1:06d}",
                "name": "数控机床改造项目",
                "customer_id": customer,
                "owner_id": owner,
                "department_id": "d-east-sh",
                "region": "华东/上海",
                "category": "A",
                "process_id": process.id,
                "stage_code": "initial_contact",
                "probability": 10,
                "status": "open",
            }
            session.execute(insert(Opportunity), [row])
        return str(row["id"])

    return add


def approvers(expense):
    return [(a["level"], a["approver_person_id"], a["decision"]) for a in expense["approvals"]]


# -- submitting ------------------------------------------------------------------------------
def test_submit_names_the_department_manager(submit, outbox_events):
    expense = submit(receipt_no="FP-001", remark="上海-苏州 高铁")
    assert expense["code"] == f"EXP-{YEAR}-000001"
    assert (expense["status"], expense["amount"], expense["currency"]) == (
        "submitted",
        "380.00",
        "CNY",
    )
    assert (expense["submitter_id"], expense["department_id"]) == ("u-sales-01", "d-east-sh")
    assert (expense["region"], expense["category"]) == ("华东/上海", "A")
    assert approvers(expense) == [(1, "p-sh-mgr", None)]
    assert expense["approvals"][0]["approver_user_id"] == "u-sh-mgr"
    assert expense["waiting_for"]["approver_person_id"] == "p-sh-mgr"
    [(kind, data)] = outbox_events()
    assert kind == "expense_submitted" and data["expense"]["code"] == expense["code"]


def test_above_the_second_level_amount_the_next_manager_up_approves_too(submit):
    assert approvers(submit("5000.00")) == [(1, "p-sh-mgr", None)]
    assert approvers(submit("5000.01")) == [(1, "p-sh-mgr", None), (2, "p-east-mgr", None)]
    assert approvers(submit("100", currency="USD"))[1][1] == "p-east-mgr"


def test_a_managers_own_expense_goes_to_the_level_above(submit, act_as):
    act_as(MANAGER)
    assert approvers(submit("6000")) == [(1, "p-east-mgr", None), (2, "p-boss", None)]


def test_a_department_without_a_manager_passes_to_the_next_up(submit, act_as):
    act_as(OTHER_OFFICE)
    expense = submit(customer_id=str(GUANGZHOU_HEAVY))
    assert approvers(expense) == [(1, "p-south-mgr", None)]


def test_the_second_level_amount_is_configurable(db, principal):
    assert parse_threshold(None) == DEFAULT_SECOND_LEVEL_AMOUNT
    assert parse_threshold("1000 USD") == Money(Decimal(1000), "USD")
    with db.session() as session:
        session.add(ExpenseCategory(code="travel", name="差旅", active=True))
    service = worker_factory(
        SalesService,
        db=db,
        outbox=OutboxWriter(OutboxMessage, "sales"),
        second_level_amount=parse_threshold("1000"),
    )
    expense = service.submit_expense(
        {"expense_category": "travel", "amount": "1000.01", "spent_on": str(TODAY)}
    )
    assert len(expense["approvals"]) == 2
    assert (expense["customer_id"], expense["region"], expense["category"]) == (None, None, None)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"amount": "0"}, "amount"),
        ({"amount": 12.5}, "amount"),
        ({"amount": "-3"}, "amount"),
        ({"category": "lunch"}, "expense_category"),
        ({"spent_on": str(TODAY + timedelta(days=2))}, "spent_on"),
        ({"customer_id": str(GUANGZHOU_HEAVY)}, "customer_id"),
        ({"customer_id": str(OLD_EAST)}, "customer_id"),
        ({"currency": "RMB1"}, "currency"),
    ],
)
def test_submit_refusals_name_the_field(submit, fields, field):
    with pytest.raises(ValidationFailed) as caught:
        submit(**fields)
    assert list(caught.value.field_errors) == [field]


def test_links_take_the_customer_and_must_agree(service, submit, opportunity, act_as):
    deal = opportunity()
    expense = submit(customer_id=None, opportunity_id=deal)
    assert (expense["customer_id"], expense["opportunity_id"]) == (str(EAST_MACHINERY), deal)
    with pytest.raises(ValidationFailed) as caught:
        submit(opportunity_id=opportunity(owner="u-sales-02"))
    assert list(caught.value.field_errors) == ["opportunity_id"]
    act_as(MANAGER)
    activity = service.plan_activity(
        {
            "type": "visit",
            "subject": "拜访",
            "customer_id": str(SHANGHAI_PRECISION),
            "status": "done",
            "result": "ok",
        }
    )
    with pytest.raises(ValidationFailed) as caught:
        submit(opportunity_id=deal, activity_id=activity["id"])
    assert list(caught.value.field_errors) == ["activity_id"]
    with pytest.raises(ValidationFailed) as caught:
        submit(customer_id=str(SHANGHAI_PRECISION), opportunity_id=deal)
    assert list(caught.value.field_errors) == ["opportunity_id"]


def test_an_expense_nobody_can_approve_is_refused(submit, act_as, db):
    act_as(BOSS)
    with pytest.raises(Conflict) as caught:
        submit("100", customer_id=None)
    assert caught.value.details["reason"] == "no_approver"


# -- deciding --------------------------------------------------------------------------------
def test_two_levels_approve_in_order_then_finance_pays(service, submit, act_as, outbox_events):
    expense = submit("8800.00", category="entertainment")
    act_as(EAST_MANAGER)
    with pytest.raises(Forbidden) as caught:
        service.approve_expense(expense["id"], {})
    assert caught.value.details == {"reason": "not_the_approver", "level": 1}
    act_as(MANAGER)
    first = service.approve_expense(expense["id"], {"comment": "同意"})
    assert first["status"] == "submitted"
    assert approvers(first) == [(1, "p-sh-mgr", "approved"), (2, "p-east-mgr", None)]
    assert first["waiting_for"]["level"] == 2
    with pytest.raises(Forbidden):
        service.approve_expense(expense["id"], {})
    act_as(EAST_MANAGER)
    approved = service.approve_expense(expense["id"], {})
    assert approved["status"] == "approved" and approved["waiting_for"] is None
    act_as(MANAGER)
    with pytest.raises(Forbidden):
        service.pay_expense(expense["id"])
    act_as(FINANCE)
    paid = service.pay_expense(expense["id"])
    assert paid["status"] == "paid" and paid["paid_at"] is not None
    with pytest.raises(Conflict):
        service.pay_expense(expense["id"])
    assert [kind for kind, _ in outbox_events()] == [
        "expense_submitted",
        "expense_approved",
        "expense_approved",
        "expense_paid",
    ]
    history = service.expense_history(expense["id"])["items"]
    assert [entry["change"] for entry in history][::-1][:1] == ["submitted"]
    assert {"approved", "paid"} <= {entry["change"] for entry in history}


def test_nobody_approves_their_own_expense(service, submit, act_as, db):
    act_as(MANAGER)
    own = submit("300")
    with pytest.raises(Forbidden) as caught:
        service.approve_expense(own["id"], {})
    assert caught.value.details["reason"] == "own_expense"
    act_as(EAST_MANAGER)
    assert service.approve_expense(own["id"], {})["status"] == "approved"


def test_approvers_outside_the_chain_and_scope_find_nothing(service, submit, act_as):
    expense = submit()
    act_as(SOUTH_MANAGER)
    with pytest.raises(NotFound):
        service.approve_expense(expense["id"], {})
    with pytest.raises(NotFound):
        service.get_expense(expense["id"])
    act_as(COLLEAGUE)
    with pytest.raises(Forbidden):
        service.approve_expense(expense["id"], {})
    with pytest.raises(NotFound):
        service.get_expense(expense["id"])


def test_a_rejection_needs_a_comment_and_ends_the_approval(service, submit, act_as, outbox_events):
    expense = submit("9000")
    act_as(MANAGER)
    with pytest.raises(ValidationFailed) as caught:
        service.reject_expense(expense["id"], {})
    assert list(caught.value.field_errors) == ["comment"]
    rejected = service.reject_expense(expense["id"], {"comment": "票据不全"})
    assert rejected["status"] == "rejected" and rejected["waiting_for"] is None
    assert rejected["approvals"][0]["comment"] == "票据不全"
    act_as(EAST_MANAGER)
    with pytest.raises(Conflict):
        service.approve_expense(expense["id"], {})
    act_as(FINANCE)
    with pytest.raises(Conflict):
        service.pay_expense(expense["id"])
    assert outbox_events()[-1][0] == "expense_rejected"


# -- reading ---------------------------------------------------------------------------------
def test_lists_mine_awaiting_me_and_by_status(service, submit, act_as):
    small, large = submit("100"), submit("6000")
    act_as(COLLEAGUE)
    theirs = submit("200", customer_id=str(SHANGHAI_PRECISION))

    def ids(**query):
        return [e["id"] for e in service.list_expenses(query)["items"]]

    assert ids() == [theirs["id"]]
    act_as(MANAGER)
    assert ids() == [theirs["id"], large["id"], small["id"]]
    assert ids(awaiting_me=True) == ids()
    assert ids(mine=True) == []
    service.approve_expense(large["id"], {})
    assert ids(awaiting_me=True) == [theirs["id"], small["id"]]
    assert ids(submitter_id="u-sales-01", sort="created_at") == [small["id"], large["id"]]
    act_as(EAST_MANAGER)
    assert ids() == [large["id"]], "an approver sees what they approve"
    assert ids(awaiting_me=True) == [large["id"]]
    service.approve_expense(large["id"], {})
    assert ids(awaiting_me=True) == []
    assert ids(status="approved") == [large["id"]]
    act_as(OTHER_OFFICE)
    assert ids() == [] and ids(awaiting_me=True) == []


def test_totals_per_person_department_and_month_and_cost_of_sale(
    service, submit, act_as, opportunity
):
    deal = opportunity()
    first = submit("100.10", opportunity_id=deal)
    second = submit("200.20", category="gift", opportunity_id=deal)
    submit("300.30")
    act_as(COLLEAGUE)
    theirs = submit("50", customer_id=str(SHANGHAI_PRECISION))
    act_as(MANAGER)
    for expense in (first, second, theirs):
        service.approve_expense(expense["id"], {})
    month = f"{TODAY:%Y-%m}"
    totals = service.expense_totals({})
    assert totals["by"] == ["submitter_id", "month"]
    assert [(t["key"], t["amount"], t["count"]) for t in totals["items"]] == [
        ({"submitter_id": "u-sales-01", "month": month}, "300.30", 2),
        ({"submitter_id": "u-sales-02", "month": month}, "50.00", 1),
    ]
    by_department = service.expense_totals({"by": "department_id", "status": "submitted,approved"})
    assert [(t["key"], t["amount"]) for t in by_department["items"]] == [
        ({"department_id": "d-east-sh"}, "650.60")
    ]
    cost = service.cost_of_sale({"opportunity_id": deal})
    assert (cost["opportunity_id"], cost["customer_id"]) == (deal, str(EAST_MACHINERY))
    assert [(t["key"], t["amount"]) for t in cost["totals"]] == [
        ({"expense_category": "gift"}, "200.20"),
        ({"expense_category": "travel"}, "100.10"),
    ]
    assert [(t["currency"], t["amount"], t["count"]) for t in cost["total"]] == [
        ("CNY", "300.30", 2)
    ]
    customer = service.cost_of_sale({"customer_id": str(SHANGHAI_PRECISION)})
    assert [t["amount"] for t in customer["total"]] == ["50.00"]
    act_as(OTHER_OFFICE)
    with pytest.raises(NotFound):
        service.cost_of_sale({"opportunity_id": deal})
    with pytest.raises(NotFound):
        service.cost_of_sale({"customer_id": str(EAST_MACHINERY)})
    assert service.expense_totals({})["items"] == []
    with pytest.raises(ValidationFailed):
        service.cost_of_sale({})


# -- categories ------------------------------------------------------------------------------
def test_categories_are_configured_by_admins(service, submit, act_as):
    listed = service.list_expense_categories({})["items"]
    assert [c["code"] for c in listed] == sorted(DEFAULT_CATEGORIES)
    with pytest.raises(Forbidden):
        service.create_expense_category({"code": "exhibition", "name": "展会"})
    act_as(ADMIN)
    made = service.create_expense_category({"code": "exhibition", "name": "展会"})
    assert made == {"code": "exhibition", "name": "展会", "active": True}
    with pytest.raises(ValidationFailed):
        service.create_expense_category({"code": "exhibition", "name": "展会"})
    assert service.update_expense_category("gift", {"active": False})["active"] is False
    with pytest.raises(NotFound):
        service.update_expense_category("nope", {"name": "x"})
    assert "gift" in [
        c["code"] for c in service.list_expense_categories({"include_inactive": True})["items"]
    ]
    act_as(SALES)
    with pytest.raises(ValidationFailed) as caught:
        submit(category="gift")
    assert list(caught.value.field_errors) == ["expense_category"]
    assert submit(category="exhibition")["expense_category"] == "exhibition"


def test_submitting_needs_the_permission(service, act_as):
    act_as(FINANCE)
    with pytest.raises(Forbidden):
        service.submit_expense({})
    assert service.list_expenses({})["items"] == []


def test_an_expense_linked_to_an_activity_takes_its_customer(
    service, submit, opportunity, outbox_events
):
    deal = opportunity()
    visit = service.plan_activity(
        {
            "type": "visit",
            "subject": "拜访设备部",
            "customer_id": str(EAST_MACHINERY),
            "opportunity_id": deal,
            "status": "done",
            "result": "确认需求",
        }
    )

    by_activity = submit(customer_id=None, activity_id=visit["id"])
    assert (by_activity["customer_id"], by_activity["activity_id"]) == (
        str(EAST_MACHINERY),
        visit["id"],
    )
    assert (by_activity["region"], by_activity["category"]) == ("华东/上海", "A")
    kind, data = outbox_events()[-1]
    assert kind == "expense_submitted" and data["expense"]["activity_id"] == visit["id"]

    all_three = submit(opportunity_id=deal, activity_id=visit["id"])
    read = service.get_expense(all_three["id"])
    assert (read["customer_id"], read["opportunity_id"], read["activity_id"]) == (
        str(EAST_MACHINERY),
        deal,
        visit["id"],
    )
    assert read["status"] == "submitted"
