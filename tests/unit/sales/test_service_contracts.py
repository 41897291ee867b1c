"""Contracts (合同) through the sales service: drafted directly, from a won opportunity or for
an order, with payment milestones by amount or percentage that must add up to the amount;
signed (contract_signed), terminated, changed only as drafts; expiring within N days; scoped by
grants; the milestones receivables plans collections by."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from nameko.testing.services import worker_factory
from sqlalchemy import update

from crm_common.application import UseCaseContext
from crm_common.context import Principal
from crm_common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from crm_common.ids import BUSINESS_TZ
from crm_common.models import utcnow
from crm_common.outbox import OutboxWriter
from sales.application.contracts import Contracts, activate_started
from sales.application.processes import seed_defaults
from sales.domain.credit import WhenNoLimit
from sales.models import Opportunity, OutboxMessage
from sales.repository.contracts import contract_milestones
from sales.repository.opportunities import business_year
from sales.service import SalesService

from .sample_org import (
    EAST_MACHINERY,
    GUANGZHOU_HEAVY,
    OLD_EAST,
    SALES_PERMISSIONS,
    SHANGHAI_PRECISION,
    T0,
)

YEAR = business_year()
TODAY = utcnow().astimezone(BUSINESS_TZ).date()
"""The business's day (Asia/Shanghai), taken again as each test starts (``today``)."""
CONTRACT_PERMISSIONS = ("contract:read", "contract:write", "order:read", "order:write")
SELLER = Principal(
    user_id="u-sales-01",
    department_id="d-east-sh",
    roles=("sales",),
    permissions=(*SALES_PERMISSIONS, *CONTRACT_PERMISSIONS),
    grants=({"owner": "self"},),
)
COLLEAGUE = Principal(
    user_id="u-sales-02",
    department_id="d-east-sh",
    roles=("sales",),
    permissions=(*SALES_PERMISSIONS, *CONTRACT_PERMISSIONS),
    grants=({"owner": "self"},),
)
NOTIFY = Principal(
    user_id="service:notify",
    permissions=("org:structure:read", "sales:due-records:read"),
    grants=({},),
)
MILESTONES = [
    {"name": "预付款", "due_date": "2026-03-10", "amount": "30000.00"},
    {"name": "到货款", "due_date": "2026-04-30", "amount": "60000.00"},
    {"name": "质保金", "due_date": "2027-04-30", "amount": "10000.00"},
]


@pytest.fixture(autouse=True)
def today() -> None:
    """A run may cross midnight in China: each test takes the day it runs on."""
    global TODAY
    TODAY = utcnow().astimezone(BUSINESS_TZ).date()


@pytest.fixture(autouse=True)
def seller(principal, act_as):
    act_as(SELLER)


@pytest.fixture
def service(db, principal):
    return worker_factory(
        SalesService,
        db=db,
        outbox=OutboxWriter(OutboxMessage, "sales"),
        credit_policy=WhenNoLimit.ALLOW,
    )


@pytest.fixture
def make(service):
    def make(customer=EAST_MACHINERY, milestones=None, **fields):
        data = {
            "title": "华东机电2026年度轴承供货合同",
            "customer_id": None if customer is None else str(customer),
            "our_entity": "上海联拓工业品有限公司",
            "amount": "100000.00",
            "start_date": "2026-03-01",
            "end_date": "2027-02-28",
            "milestones": MILESTONES if milestones is None else milestones,
            **fields,
        }
        return service.create_contract({k: v for k, v in data.items() if v is not None})

    return make


def field_errors(info):
    return set(info.value.field_errors)


def test_a_direct_contract_is_a_draft_with_its_milestones(make):
    contract = make(
        terms="货到30天内付款",
        attachments=["合同正本.pdf", "技术协议.docx"],
        customer_signatory="王经理",
    )
    assert contract["code"] == f"HT-{YEAR}-000001"
    assert (contract["status"], contract["amount"], contract["currency"]) == (
        "draft",
        "100000.00",
        "CNY",
    )
    assert (contract["owner_id"], contract["department_id"]) == ("u-sales-01", "d-east-sh")
    assert (contract["region"], contract["category"]) == ("华东/上海", "A")
    assert contract["attachments"] == ["合同正本.pdf", "技术协议.docx"]
    assert [(m["seq"], m["name"], m["amount"]) for m in contract["milestones"]] == [
        (1, "预付款", "30000.00"),
        (2, "到货款", "60000.00"),
        (3, "质保金", "10000.00"),
    ]


def test_milestones_by_percent_put_the_rounding_on_the_last(make):
    contract = make(
        amount="100000.01",
        milestones=[
            {"name": "预付款", "due_date": "2026-03-10", "percent": "30"},
            {"name": "到货款", "due_date": "2026-04-30", "percent": "60"},
            {"name": "质保金", "due_date": "2027-04-30", "percent": "10"},
        ],
    )
    amounts = [Decimal(m["amount"]) for m in contract["milestones"]]
    assert amounts == [Decimal("30000.00"), Decimal("60000.01"), Decimal("10000.00")]
    assert sum(amounts) == Decimal("100000.01")
    assert Decimal(contract["milestones"][0]["percent"]) == 30


def test_milestones_must_add_up_and_bad_input_names_its_fields(make, service):
    with pytest.raises(ValidationFailed) as info:
        make(milestones=MILESTONES[:2])
    assert field_errors(info) == {"milestones"}
    with pytest.raises(ValidationFailed) as info:
        make(end_date="2026-02-01")
    assert field_errors(info) == {"end_date"}
    with pytest.raises(ValidationFailed) as info:
        make(milestones=[MILESTONES[0], {**MILESTONES[1], "amount": "abc"}, MILESTONES[2]])
    assert field_errors(info) == {"milestones.2.amount"}
    with pytest.raises(ValidationFailed) as info:
        make(
            milestones=[MILESTONES[0], {"name": "尾款", "due_date": "2026-05-01", "percent": "70"}]
        )
    assert field_errors(info) == {"milestones"}
    with pytest.raises(ValidationFailed) as info:
        make(
            milestones=[{**MILESTONES[0], "amount": "100000.00"}, {**MILESTONES[0], "amount": None}]
        )
    assert field_errors(info) == {"milestones.1.amount"}
    with pytest.raises(ValidationFailed) as info:
        make(customer=GUANGZHOU_HEAVY)
    assert field_errors(info) == {"customer_id"}
    assert service.list_contracts({})["items"] == []


@pytest.fixture
def won_opportunity(db, service):
    with db.session() as session:
        seed_defaults(session, T0)
    opportunity = service.create_opportunity(
        {"name": "华东机电轴承年度采购", "customer_id": str(EAST_MACHINERY)}
    )
    return opportunity


def test_a_contract_follows_a_won_opportunity(db, make, service, won_opportunity):
    with pytest.raises(ValidationFailed) as info:
        make(customer=None, opportunity_id=won_opportunity["id"])
    assert field_errors(info) == {"opportunity_id"}
    with db.session() as session:
        session.execute(
            update(Opportunity)
            .where(Opportunity.id == uuid.UUID(won_opportunity["id"]))
            .values(status="won")
        )
    contract = make(customer=None, opportunity_id=won_opportunity["id"])
    assert contract["customer_id"] == str(EAST_MACHINERY)
    assert contract["opportunity_id"] == won_opportunity["id"]
    with pytest.raises(ValidationFailed) as info:
        make(customer=OLD_EAST, opportunity_id=won_opportunity["id"])
    assert field_errors(info) == {"opportunity_id"}


def test_a_contract_for_an_order_of_its_customer(make, service):
    order = service.create_order(
        {
            "customer_id": str(EAST_MACHINERY),
            "lines": [
                {
                    "item_code": "MTR-Y2-132",
                    "item_name": "三相异步电动机",
                    "unit": "台",
                    "quantity": "1",
                    "unit_price": "88495.58",
                }
            ],
        }
    )
    contract = make(
        order_id=order["id"],
        milestones=[{"name": "全款", "due_date": "2026-03-31", "amount": "100000.00"}],
    )
    assert contract["order_id"] == order["id"]
    with pytest.raises(ValidationFailed) as info:
        make(customer=OLD_EAST, order_id=order["id"])
    assert field_errors(info) == {"order_id"}


def test_signing_activates_a_started_contract_and_publishes_contract_signed(
    make, service, outbox_events
):
    started = make(
        start_date=str(TODAY - timedelta(days=1)), end_date=str(TODAY + timedelta(days=300))
    )
    signed = service.sign_contract(started["id"], {"signed_on": str(TODAY)})
    assert (signed["status"], signed["signed_on"]) == ("active", str(TODAY))
    [(kind, data)] = [e for e in outbox_events() if e[0] == "contract_signed"]
    assert data["contract"]["code"] == started["code"]
    assert (data["customer_id"], data["owner_id"], data["department_id"]) == (
        str(EAST_MACHINERY),
        "u-sales-01",
        "d-east-sh",
    )
    future = make(
        start_date=str(TODAY + timedelta(days=10)), end_date=str(TODAY + timedelta(days=400))
    )
    assert service.sign_contract(future["id"], {})["status"] == "signed"
    with pytest.raises(ValidationFailed):
        service.sign_contract(future["id"], {})
    with pytest.raises(Conflict):
        service.update_contract(future["id"], {"title": "改名"}, future["version"] + 1)
    with pytest.raises(ValidationFailed) as info:
        service.terminate_contract(future["id"], {})
    assert field_errors(info) == {"reason"}
    ended = service.terminate_contract(future["id"], {"reason": "客户破产"})
    assert (ended["status"], ended["termination_reason"]) == ("terminated", "客户破产")


def test_a_draft_changes_and_percent_milestones_follow_a_new_amount(make, service):
    contract = make(
        milestones=[
            {"name": "预付款", "due_date": "2026-03-10", "percent": "30"},
            {"name": "尾款", "due_date": "2026-06-30", "percent": "70"},
        ]
    )
    changed = service.update_contract(
        contract["id"], {"amount": "200000.00", "title": "增补后合同"}, contract["version"]
    )
    assert [m["amount"] for m in changed["milestones"]] == ["60000.00", "140000.00"]
    assert changed["title"] == "增补后合同"
    with pytest.raises(Conflict):
        service.update_contract(contract["id"], {"title": "stale"}, contract["version"])
    with pytest.raises(ValidationFailed) as info:
        service.update_contract(contract["id"], {"milestones": MILESTONES[:1]}, changed["version"])
    assert field_errors(info) == {"milestones"}
    signed = service.sign_contract(contract["id"], {})
    with pytest.raises(Conflict):
        service.update_contract(contract["id"], {"title": "签后改名"}, signed["version"])
    history = service.contract_history(contract["id"])["items"]
    assert {"created", "updated", "signed"} <= {entry["change"] for entry in history}


def test_expiring_lists_contracts_in_force_ending_within_the_days(make, service, act_as, db):
    def signed(days, **fields):
        contract = make(
            start_date=str(TODAY - timedelta(days=100)),
            end_date=str(TODAY + timedelta(days=days)),
            **fields,
        )
        return service.sign_contract(contract["id"], {})

    soon = signed(10)
    later = signed(25)
    signed(40)
    make(start_date=str(TODAY - timedelta(days=100)), end_date=str(TODAY + timedelta(days=5)))
    ended = signed(3)
    service.terminate_contract(ended["id"], {"reason": "提前终止"})
    page = service.expiring_contracts({"days": 30})
    assert [c["code"] for c in page["items"]] == [soon["code"], later["code"]]
    assert page["items"][0]["days_to_end"] == 10
    assert [c["code"] for c in service.expiring_contracts({})["items"]] == [
        soon["code"],
        later["code"],
    ]
    with pytest.raises(ValidationFailed) as info:
        service.expiring_contracts({"days": -1})
    assert field_errors(info) == {"days"}
    act_as(COLLEAGUE)
    assert service.expiring_contracts({"days": 30})["items"] == []
    with pytest.raises(NotFound):
        service.get_contract(soon["id"])
    with db.session() as session:
        as_notify = Contracts(UseCaseContext(session, OutboxWriter(OutboxMessage, "sales"), NOTIFY))
        assert len(as_notify.expiring({"days": 30})["items"]) == 2
        with pytest.raises(Forbidden):
            as_notify.get(soon["id"])


def test_contract_milestones_are_the_collection_plan_of_signed_contracts(db, make, service):
    draft = make()
    active = service.sign_contract(make()["id"], {})
    with db.session() as session:
        plan = contract_milestones(session)
        only = contract_milestones(session, customer_id=SHANGHAI_PRECISION)
    assert [(row.contract_code, row.name, row.amount) for row in plan] == [
        (active["code"], "预付款", Decimal("30000.00")),
        (active["code"], "到货款", Decimal("60000.00")),
        (active["code"], "质保金", Decimal("10000.00")),
    ]
    assert plan[0].due_date == date(2026, 3, 10)
    assert (plan[0].owner_id, plan[0].department_id, plan[0].currency) == (
        "u-sales-01",
        "d-east-sh",
        "CNY",
    )
    assert only == [] and draft["code"] not in {row.contract_code for row in plan}


def test_signed_contracts_become_active_on_their_start_date_and_complete(db, make, service):
    starting = make(
        start_date=str(TODAY + timedelta(days=1)), end_date=str(TODAY + timedelta(days=90))
    )
    signed = service.sign_contract(starting["id"], {})
    assert signed["status"] == "signed"
    with pytest.raises(ValidationFailed):
        service.complete_contract(signed["id"])
    with db.session() as session:
        assert activate_started(session, utcnow()) == 0
    with db.session() as session:
        assert activate_started(session, utcnow() + timedelta(days=1)) == 1
    assert service.get_contract(signed["id"])["status"] == "active"
    done = service.complete_contract(signed["id"])
    assert done["status"] == "completed"
    history = service.contract_history(signed["id"])["items"]
    assert {"signed", "activated", "completed"} <= {entry["change"] for entry in history}


def test_a_contract_in_force_expires_after_its_end_date(db, make, service):
    ending = make(
        start_date=str(TODAY - timedelta(days=300)), end_date=str(TODAY + timedelta(days=2))
    )
    service.sign_contract(ending["id"], {})
    late = make(start_date=str(TODAY + timedelta(days=1)), end_date=str(TODAY + timedelta(days=2)))
    service.sign_contract(late["id"], {})
    with db.session() as session:
        assert activate_started(session, utcnow() + timedelta(days=3)) == 2
    assert service.get_contract(ending["id"])["status"] == "expired"
    assert service.get_contract(late["id"])["status"] == "expired"
    assert service.expiring_contracts({"days": 30})["items"] == []
    assert service.complete_contract(ending["id"])["status"] == "completed"
    with db.session() as session:
        planned = {row.contract_code for row in contract_milestones(session)}
    assert planned == {ending["code"], late["code"]}
