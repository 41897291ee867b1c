"""Demo items, price list and quotations of the sales database.

The items (bearings, motors, valves, instruments, tools…) and the year's price list with its
customer-category levels and quantity breaks are the ERP simulator's master data
(``tools.erp_simulator``), kept through ``keep_item`` / ``keep_price_list`` exactly as the ERP's
events are. Quotations are made through the quotation use cases, as their owners and
approvers would make them, for open opportunities at the proposal and negotiation stages:
drafts, quotes approved within the salesperson's authority, quotes waiting for a manager's
approval, approved by one, sent, declined by the customer and expired. Nothing is announced.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_common.application import UseCaseContext
from crm_common.context import Principal
from demo import org as org_demo
from sales.application.catalog import keep_item, keep_price_list
from sales.application.quotes import Quotes, QuoteSettings, expire_quotes, parse_limits
from sales.models import Opportunity
from sales.models.catalog import Item
from sales.models.quotes import Quote
from sales.schemas.erp import ERP_EVENT_SCHEMAS
from tools.erp_simulator.world import Stream

QUOTE_COUNT = 24
SEED = 20261130
STAGES = ("proposal", "negotiation")
SETTINGS = QuoteSettings(
    parse_limits(None),
    {
        "name": "华东工业品供应链有限公司",
        "address": "上海市浦东新区张江路 88 号",
        "phone": "021-5888 0000",
    },
)
ROLE_OF_USER = {user.id: user.role for user in org_demo.DEMO_USERS}
DEPARTMENT_OF_USER = {user.id: user.department_id for user in org_demo.DEMO_USERS}
USER_OF_PERSON = {user.person_id: user.id for user in org_demo.DEMO_USERS}
TERMS = (
    "1. 以上单价为不含税价，开具13%增值税专用发票；\n"
    "2. 款到发货，货到验收后7日内付清尾款；\n"
    "3. 交货期：合同生效后15个工作日。"
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
        permissions=("opportunity:read", "opportunity:write"),
        grants=({},),
    )


def keep_master_data(session: Session) -> dict[str, int]:
    """The ERP simulator's items and price list, as its events would leave them."""
    counts = {"items": 0, "price_lists": 0}
    for event in Stream(SEED).master_data():
        kind = event.envelope["type"]
        if kind not in ("item_updated", "price_list_updated"):
            continue
        data = ERP_EVENT_SCHEMAS[kind]().load(event.envelope["data"])
        occurred_at = datetime.fromisoformat(event.envelope["occurred_at"])
        if kind == "item_updated":
            keep_item(session, data, occurred_at)
            counts["items"] += 1
        else:
            keep_price_list(session, data, occurred_at)
            counts["price_lists"] += 1
    session.flush()
    return counts


def load_quotes(session: Session, now: datetime) -> dict[str, int]:
    """Keep the master data and make the demo's quotes (once: none if quotes exist)."""
    counts = keep_master_data(session)
    if session.scalar(select(func.count()).select_from(Quote)):
        return counts
    rng = random.Random(SEED)
    items = list(
        session.scalars(select(Item).where(Item.active.is_(True)).order_by(Item.item_code))
    )
    opportunities = session.scalars(
        select(Opportunity)
        .where(Opportunity.status == "open", Opportunity.stage_code.in_(STAGES))
        .order_by(Opportunity.code)
        .limit(QUOTE_COUNT)
    ).all()

    def as_user(user_id: str) -> Quotes:
        context = UseCaseContext(session, _Quiet(), principal_of(user_id), now)
        return Quotes(context, SETTINGS)

    made = 0
    for number, opportunity in enumerate(opportunities):
        owner = as_user(opportunity.owner_id)
        chosen = rng.sample(items, rng.randint(1, 3))
        lines = [
            {
                "item_code": item.item_code,
                "quantity": str(rng.choice((5, 10, 20, 50, 100, 200))),
                "discount_percent": str(rng.choice((0, 0, 2, 3))),
            }
            for item in chosen
        ]
        plan = number % 8
        document_discount = {0: "0", 1: "2", 2: "8", 3: "4", 4: "3", 5: "12", 6: "1", 7: "3"}
        quote = owner.create(
            {
                "opportunity_id": str(opportunity.id),
                "title": f"{opportunity.name} 报价",
                "lines": lines,
                "discount_percent": document_discount[plan],
                "terms": TERMS,
                "valid_until": (now + timedelta(days=rng.choice((15, 30, 45)))).date().isoformat(),
            }
        )
        made += 1
        if plan == 0:
            continue  # a draft
        submitted = owner.submit(quote["id"], {})
        approvals = 0
        while submitted["status"] == "submitted" and plan != 2 and approvals < 4:
            approver = USER_OF_PERSON.get(submitted["waiting_for"]["approver_person_id"])
            if approver is None:
                break
            submitted = as_user(approver).approve(quote["id"], {"comment": "同意"})
            approvals += 1
        if submitted["status"] != "approved" or plan in (1, 6):
            continue  # waiting for approval, or approved and not sent yet
        owner.send(quote["id"], {})
        if plan == 4:
            owner.decline(quote["id"], {"reason": "客户选择了报价更低的竞争对手"})
        elif plan == 7:
            stored = session.get(Quote, uuid.UUID(quote["id"]))
            if stored is not None:
                stored.valid_until = (now - timedelta(days=3)).date()
    session.flush()
    expired = expire_quotes(session, now)
    return {**counts, "quotes": made, "quotes_expired": expired}
