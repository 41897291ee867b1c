"""Demo sales orders and contracts of the sales database.

For won opportunities their owners enter orders of the demo's items, through the order use
cases: drafts, confirmed ones the ERP has not answered yet, ones the ERP booked, shipped in
part or in full (its events applied as the ERP consumer applies them), one it rejected and one
whose cancellation the ERP was asked for. Contracts follow won opportunities with payment
milestones of 30 / 60 / 10 percent: signed and in force, a few ending within the month (the
expiring list), a draft, a completed and a terminated one. Nothing is announced.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_common.application import UseCaseContext
from crm_common.context import Principal
from crm_common.ids import BUSINESS_TZ
from crm_common.scope import Grant
from demo import org as org_demo
from sales.application.contracts import Contracts
from sales.application.erp_orders import apply_order_event
from sales.application.orders import Orders
from sales.models import Customer, Opportunity
from sales.models.catalog import Item
from sales.models.orders import Contract, SalesOrder
from sales.schemas.erp import ERP_EVENT_SCHEMAS

ORDER_COUNT = 18
CONTRACT_COUNT = 12
SEED = 20261202
OUR_ENTITY = "华东工业品供应链有限公司"
ROLE_OF_USER = {user.id: user.role for user in org_demo.DEMO_USERS}
DEPARTMENT_OF_USER = {user.id: user.department_id for user in org_demo.DEMO_USERS}
CONTRACT_TERMS = (
    "1. 供方按订单分批交货，需方收货后5个工作日内验收；\n"
    "2. 付款：合同签订后7日内支付30%预付款，到货验收后支付60%，质保期满支付10%；\n"
    "3. 质保期：自验收合格之日起12个月。"
)


class _Quiet:
    """The demo announces nothing: events are dropped."""

    def add(self, session: Session, event_type: str, data: dict[str, Any], version: int = 1) -> Any:
        return None


def principal_of(user_id: str) -> Principal:
    """The user as a principal who sees everything (the demo writes as them)."""
    return Principal(
        user_id=user_id,
        department_id=DEPARTMENT_OF_USER.get(user_id),
        roles=(ROLE_OF_USER.get(user_id, "sales_rep"),),
        permissions=(
            "opportunity:read",
            "opportunity:write",
            "order:read",
            "order:write",
            "contract:read",
            "contract:write",
        ),
        grants=(Grant(),),
    )


def _erp(
    session: Session, event_type: str, data: dict[str, Any], at: datetime, event_id: str
) -> None:
    loaded = ERP_EVENT_SCHEMAS[event_type]().load(data)
    apply_order_event(session, _Quiet(), event_type, loaded, at, event_id, None)


def _booked(order: dict[str, Any], customer: Customer, erp_order_no: str) -> dict[str, Any]:
    """The ERP's ``order_created`` answering a CRM order."""
    return {
        "erp_order_no": erp_order_no,
        "crm_order_id": order["id"],
        "customer": {
            "crm_customer_id": str(customer.id),
            "erp_code": customer.erp_code or customer.code,
            "credit_code": None,
            "name": customer.name,
        },
        "order_date": order["order_date"],
        "currency": order["currency"],
        "lines": [
            {
                "line_no": line["line_no"],
                "item_code": line["item_code"],
                "item_name": line["item_name"],
                "quantity": line["quantity"],
                "unit": line["unit"] or "个",
                "unit_price": line["unit_price"],
                "tax_rate": line["tax_rate"],
                "amount": line["gross"],
            }
            for line in order["lines"]
        ],
        "total_amount": order["gross"],
        "salesperson_code": order["salesperson_code"],
        "department_code": order["department_code"],
    }


def _shipment(
    order: dict[str, Any], erp_order_no: str, shipment_no: str, share: Decimal, at: datetime
) -> dict[str, Any]:
    return {
        "erp_order_no": erp_order_no,
        "shipment_no": shipment_no,
        "shipped_at": at.isoformat(),
        "lines": [
            {
                "line_no": line["line_no"],
                "item_code": line["item_code"],
                "quantity": f"{(Decimal(line['quantity']) * share).quantize(Decimal(1)):f}",
                "serial_numbers": [],
            }
            for line in order["lines"]
        ],
    }


def load_orders(session: Session, now: datetime) -> dict[str, int]:
    """Make the demo's orders and contracts (once: none if orders exist)."""
    if session.scalar(select(func.count()).select_from(SalesOrder)):
        return {}
    rng = random.Random(SEED)
    items = list(
        session.scalars(
            select(Item)
            .where(Item.active.is_(True), Item.list_price.is_not(None))
            .order_by(Item.item_code)
        )
    )
    won = session.scalars(
        select(Opportunity).where(Opportunity.status == "won").order_by(Opportunity.code)
    ).all()
    if not items or not won:
        return {"orders": 0, "contracts": 0}

    def context_of(user_id: str) -> UseCaseContext:
        return UseCaseContext(session, _Quiet(), principal_of(user_id), now)

    orders = 0
    for number, opportunity in enumerate(won[:ORDER_COUNT]):
        use_cases = Orders(context_of(opportunity.owner_id))
        chosen = rng.sample(items, rng.randint(1, 3))
        order = use_cases.create(
            {
                "customer_id": str(opportunity.customer_id),
                "opportunity_id": str(opportunity.id),
                "requested_delivery_date": (now + timedelta(days=rng.choice((7, 14, 30))))
                .date()
                .isoformat(),
                "lines": [
                    {
                        "item_code": item.item_code,
                        "item_name": item.name,
                        "spec": item.spec,
                        "unit": item.unit or "个",
                        "quantity": str(rng.choice((2, 5, 10, 20, 50))),
                        "unit_price": f"{item.list_price:f}",
                        "tax_rate": f"{item.tax_rate if item.tax_rate is not None else '0.13'}",
                        "discount": {"kind": "percent", "value": str(rng.choice((0, 2, 3, 5)))},
                    }
                    for item in chosen
                ],
                "remark": None if number % 3 else "请分批发货",
            }
        )
        orders += 1
        plan = number % 6
        if plan == 0:
            continue  # a draft
        order = use_cases.confirm(order["id"], {}, None)
        if plan == 1 or order["status"] != "confirmed":
            continue  # waiting for the ERP, or for a manager
        customer = session.get(Customer, opportunity.customer_id)
        if customer is None:
            continue
        erp_order_no = f"SO{now.year}-{7000 + number:05d}"
        booked_at = now - timedelta(days=20 - number)
        if plan == 5:
            _erp(
                session,
                "order_rejected",
                {"crm_order_id": order["id"], "reason": "客户信用冻结，请先回款"},
                booked_at,
                f"demo-erp-{number}-rejected",
            )
            continue
        _erp(
            session,
            "order_created",
            _booked(order, customer, erp_order_no),
            booked_at,
            f"demo-erp-{number}-created",
        )
        if plan == 2:
            use_cases.cancel(order["id"], {"reason": "客户项目延期"})
            continue
        shipped_at = booked_at + timedelta(days=3)
        share = Decimal("0.5") if plan == 3 else Decimal(1)
        _erp(
            session,
            "order_shipped",
            _shipment(order, erp_order_no, f"FH{now.year}-{7000 + number:05d}", share, shipped_at),
            shipped_at,
            f"demo-erp-{number}-shipped",
        )
    contracts = _contracts(session, won, now, context_of)
    session.flush()
    return {"orders": orders, "contracts": contracts}


def _contracts(session: Session, won: Any, now: datetime, context_of: Any) -> int:
    made = 0
    today = now.astimezone(BUSINESS_TZ).date()
    for number, opportunity in enumerate(won[:CONTRACT_COUNT]):
        use_cases = Contracts(context_of(opportunity.owner_id))
        amount = opportunity.expected_amount or Decimal("120000.00")
        ends: date
        if number % 4 == 1:
            ends = today + timedelta(days=8 + number)  # expiring within the month
        else:
            ends = today + timedelta(days=200 + 10 * number)
        starts = min(ends - timedelta(days=365), today - timedelta(days=30))
        contract = use_cases.create(
            {
                "title": f"{opportunity.name} 供货合同",
                "opportunity_id": str(opportunity.id),
                "our_entity": OUR_ENTITY,
                "amount": f"{amount:f}",
                "start_date": starts.isoformat(),
                "end_date": ends.isoformat(),
                "terms": CONTRACT_TERMS,
                "attachments": ["合同正本.pdf", "技术协议.pdf"],
                "milestones": [
                    {
                        "name": "预付款",
                        "due_date": (starts + timedelta(days=7)).isoformat(),
                        "percent": "30",
                    },
                    {
                        "name": "到货款",
                        "due_date": (starts + timedelta(days=60)).isoformat(),
                        "percent": "60",
                    },
                    {
                        "name": "质保金",
                        "due_date": min(ends, starts + timedelta(days=365)).isoformat(),
                        "percent": "10",
                    },
                ],
            }
        )
        made += 1
        if number == 0:
            continue  # a draft
        use_cases.sign(contract["id"], {"signed_on": starts.isoformat()})
        if number == 3:
            use_cases.terminate(contract["id"], {"reason": "客户业务调整，双方协商终止"})
        elif number == 6:
            use_cases.complete(contract["id"])
    return made


def contract_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Contract)) or 0)
