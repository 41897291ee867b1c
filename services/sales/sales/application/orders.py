"""Sales orders (销售订单): entered directly or made from an accepted quote, changed while a
draft, confirmed through the credit check (信用检查), approved or sent back by a manager when
over the limit, cancelled; read, listed and their shipments shown.

Confirming checks the customer's exposure (receivables outstanding, its other open orders and
this order, tax included) against the credit limit the ERP set. Within it the order is
``confirmed`` at once and ``order_confirmed`` goes to the ERP through the outbox, in the same
transaction; over it (or without a limit, when configured so) the order waits for a manager
with ``order:approve`` who sees it (``pending_approval``). The first order of an opportunity
to be confirmed wins that opportunity, in the same transaction. Cancelling an order the ERP
never had cancels it; otherwise ``order_cancel_requested`` asks the ERP, whose
``order_cancelled`` ends it (see ``sales.application.erp_orders``).
"""

from __future__ import annotations

import importlib
import logging
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from nameko.extensions import DependencyProvider

from crm_common.application import UseCaseContext
from crm_common.errors import Conflict, Forbidden, Unavailable, ValidationFailed
from crm_common.history import FieldChange, filled
from crm_common.ids import BUSINESS_TZ, lookup_id
from crm_common.models import check_version, split_version
from crm_common.schemas import load
from sales import events
from sales.application.activities import SalesUseCases
from sales.application.history import dump
from sales.application.opportunities import Opportunities
from sales.domain import credit
from sales.domain.codes import format_code
from sales.domain.money import DEFAULT_CURRENCY, parse_currency, parse_decimal, quantize_fen
from sales.domain.orders import (
    OrderStatus,
    check_order_transition,
    status_on_cancel,
    status_on_confirm,
    won_by_order,
)
from sales.domain.quotes import (
    NO_DISCOUNT,
    VAT_13,
    Discount,
    DiscountKind,
    QuoteLine,
    quote_totals,
)
from sales.models import Customer, Department, Opportunity
from sales.models.orders import SalesOrder, SalesOrderLine
from sales.repository import orders as rows
from sales.repository import read_models
from sales.repository.opportunities import allocate_sequence
from sales.schemas.orders import (
    OrderCancelSchema,
    OrderDecisionSchema,
    OrderFromQuoteSchema,
    OrderInputSchema,
    OrderQuerySchema,
    OrderSchema,
    OrderUpdateSchema,
    ShipmentListSchema,
)

READ = "order:read"
WRITE = "order:write"
APPROVE = "order:approve"
CODE_PREFIX = "SO"
HISTORY_TYPE = "order"
WHEN_NO_LIMIT_SETTING = "CREDIT_WHEN_NO_LIMIT"
QUANTITY_STEP = Decimal("0.0001")
PRICE_STEP = Decimal("0.0001")

ORDER_FIELDS = (
    "code",
    "status",
    "customer_id",
    "opportunity_id",
    "owner_id",
    "department_id",
    "order_date",
    "requested_delivery_date",
    "currency",
    "prices_include_tax",
    "amount",
    "discount",
    "net",
    "tax",
    "gross",
    "remark",
)
DUMPED_FIELDS = (
    "id",
    "code",
    "origin",
    "status",
    "customer_id",
    "opportunity_id",
    "quote_id",
    "quote_version_no",
    "owner_id",
    "department_id",
    "region",
    "category",
    "order_date",
    "requested_delivery_date",
    "currency",
    "prices_include_tax",
    "document_discount_kind",
    "document_discount_value",
    "amount",
    "discount",
    "net",
    "tax",
    "gross",
    "remark",
    "credit_outcome",
    "credit_limit",
    "credit_exposure",
    "approved_by",
    "approved_at",
    "approval_comment",
    "confirmed_at",
    "cancel_reason",
    "erp_order_no",
    "erp_status_at",
    "erp_reason",
    "salesperson_code",
    "department_code",
    "created_by",
    "created_at",
    "updated_at",
    "version",
)
LINE_FIELDS = (
    "line_no",
    "item_code",
    "item_name",
    "spec",
    "unit",
    "quantity",
    "unit_price",
    "discount_kind",
    "discount_value",
    "tax_rate",
    "amount",
    "discount",
    "net",
    "tax",
    "gross",
    "shipped",
)

order_schema = OrderSchema()
shipments_schema = ShipmentListSchema()
log = logging.getLogger(__name__)


class CreditPolicy(DependencyProvider):
    """What an order of a customer without a credit limit from the ERP gets: config
    ``CREDIT_WHEN_NO_LIMIT``, ``allow`` (the default) or ``require_approval``."""

    def setup(self) -> None:
        self.policy = credit.parse_when_no_limit(
            str(self.container.config.get(WHEN_NO_LIMIT_SETTING) or credit.WhenNoLimit.ALLOW)
        )

    def get_dependency(self, worker_ctx: Any) -> credit.WhenNoLimit:
        return self.policy


# -- what other parts provide, looked up when used -------------------------------------------
def _provided(module: str, name: str) -> Any:
    """``name`` of ``module`` when that part of the service is installed, else None."""
    try:
        return getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None


def customer_exposure(session: Any, customer_id: uuid.UUID) -> Any:
    """The receivables' view of the customer (``credit_limit``, ``currency``,
    ``outstanding``), or None while receivables are not part of the service."""
    provided = _provided("sales.repository.receivables", "customer_exposure")
    return None if provided is None else provided(session, customer_id)


# -- dumping ---------------------------------------------------------------------------------
def order_values(
    order: SalesOrder, customer: Customer | None, lines: Sequence[SalesOrderLine] | None
) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(order, name) for name in DUMPED_FIELDS}
    values["customer_code"] = customer.code if customer else None
    values["customer_name"] = customer.name if customer else None
    if lines is not None:
        values["lines"] = [{name: getattr(line, name) for name in LINE_FIELDS} for line in lines]
    return values


def dump_order(
    order: SalesOrder, customer: Customer | None, lines: Sequence[SalesOrderLine] | None
) -> dict[str, Any]:
    return dump(order_schema, order_values(order, customer, lines))


def routing(order: SalesOrder) -> dict[str, Any]:
    """What notify routes an order event by, at the top of its data."""
    return {
        "customer_id": str(order.customer_id),
        "owner_id": order.owner_id,
        "department_id": order.department_id,
    }


def status_changed(order: dict[str, Any], from_status: str | None, source: str) -> dict[str, Any]:
    return {
        "order": order,
        "from_status": from_status,
        "to_status": order["status"],
        "source": source,
        "customer_id": order["customer_id"],
        "owner_id": order["owner_id"],
        "department_id": order["department_id"],
    }


def _text(value: Decimal) -> str:
    return f"{value:f}"


def order_request(
    session: Any, order: SalesOrder, lines: Sequence[SalesOrderLine]
) -> dict[str, Any]:
    """The ``order_confirmed`` data the ERP books the order from (``ORDER_REQUEST_SCHEMAS``)."""
    customer = session.get(Customer, order.customer_id)
    return {
        "crm_order_id": str(order.id),
        "crm_order_code": order.code,
        "customer": {
            "crm_customer_id": str(order.customer_id),
            "erp_code": getattr(customer, "erp_code", None),
            "credit_code": getattr(customer, "credit_code", None),
            "name": customer.name if customer else order.code,
        },
        "order_date": order.order_date.isoformat(),
        "currency": order.currency,
        "prices_include_tax": order.prices_include_tax,
        "lines": [
            {
                "line_no": line.line_no,
                "item_code": line.item_code,
                "item_name": line.item_name,
                "spec": line.spec,
                "unit": line.unit or "",
                "quantity": _text(line.quantity.normalize()),
                "unit_price": _text(line.unit_price),
                "discount_amount": _text(quantize_fen(line.discount)),
                "tax_rate": _text(line.tax_rate),
                "net_amount": _text(quantize_fen(line.net)),
                "tax_amount": _text(quantize_fen(line.tax)),
                "amount": _text(quantize_fen(line.gross)),
            }
            for line in lines
        ],
        "discount_amount": _text(quantize_fen(order.discount)),
        "net_amount": _text(quantize_fen(order.net)),
        "tax_amount": _text(quantize_fen(order.tax)),
        "total_amount": _text(quantize_fen(order.gross)),
        "requested_delivery_date": (
            order.requested_delivery_date.isoformat() if order.requested_delivery_date else None
        ),
        "salesperson_code": order.salesperson_code,
        "department_code": order.department_code,
        **routing(order),
    }


# -- lines and totals ------------------------------------------------------------------------
def parse_discount(value: Any, field: str) -> Discount:
    if not value:
        return NO_DISCOUNT
    amount = parse_decimal(value["value"], f"{field}.value")
    return Discount(DiscountKind(value["kind"]), amount)


def _exact(value: Decimal, step: Decimal, field: str) -> Decimal:
    if value != value.quantize(step):
        raise ValidationFailed.on(field, f"must not have more decimals than {step}")
    return value


def priced_lines(values: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The order's line rows and totals from input lines (``quote_totals`` rules: rounded
    half up to the fen once per line, the order's discount shared across lines)."""
    parsed: list[QuoteLine] = []
    discounts: list[Discount] = []
    for number, line in enumerate(values["lines"], start=1):
        field = f"lines.{number}"
        quantity = _exact(
            parse_decimal(line["quantity"], f"{field}.quantity"), QUANTITY_STEP, f"{field}.quantity"
        )
        price = _exact(
            parse_decimal(line["unit_price"], f"{field}.unit_price"),
            PRICE_STEP,
            f"{field}.unit_price",
        )
        rate = line.get("tax_rate")
        tax_rate = VAT_13 if rate is None else parse_decimal(rate, f"{field}.tax_rate")
        discount = parse_discount(line.get("discount"), f"{field}.discount")
        discounts.append(discount)
        parsed.append(QuoteLine(quantity, price, discount, tax_rate))
    document_discount = parse_discount(values.get("document_discount"), "document_discount")
    totals = quote_totals(
        parsed,
        prices_include_tax=bool(values.get("prices_include_tax")),
        document_discount=document_discount,
    )
    line_rows = [
        {
            "line_no": number,
            "item_code": given["item_code"],
            "item_name": given["item_name"],
            "spec": given.get("spec"),
            "unit": given.get("unit"),
            "quantity": line.quantity,
            "unit_price": line.unit_price,
            "discount_kind": discount.kind.value if discount is not NO_DISCOUNT else None,
            "discount_value": discount.value if discount is not NO_DISCOUNT else None,
            "tax_rate": line.tax_rate,
            "amount": figures.amount,
            "discount": figures.line_discount + figures.document_discount,
            "net": figures.net,
            "tax": figures.tax,
            "gross": figures.gross,
            "shipped": Decimal(0),
        }
        for number, (given, line, discount, figures) in enumerate(
            zip(values["lines"], parsed, discounts, totals.lines, strict=True), start=1
        )
    ]
    summary = {
        "amount": totals.amount,
        "discount": totals.discount,
        "net": totals.net,
        "tax": totals.tax,
        "gross": totals.gross,
        "document_discount_kind": (
            document_discount.kind.value if document_discount is not NO_DISCOUNT else None
        ),
        "document_discount_value": (
            document_discount.value if document_discount is not NO_DISCOUNT else None
        ),
    }
    return line_rows, summary


class Orders(SalesUseCases):
    def __init__(
        self,
        context: UseCaseContext,
        when_no_limit: credit.WhenNoLimit = credit.WhenNoLimit.ALLOW,
    ) -> None:
        super().__init__(context)
        self.when_no_limit = when_no_limit
        self.visible = rows.visible_orders(self.principal)

    def today(self) -> date:
        return self.context.now.astimezone(BUSINESS_TZ).date()

    def order(self, order_id: Any) -> SalesOrder:
        return rows.get_order(self.session, order_id, self.visible)

    def dumped(self, order: SalesOrder, *, detail: bool = True) -> dict[str, Any]:
        customer = self.session.get(Customer, order.customer_id)
        lines = rows.lines_of(self.session, order.id) if detail else None
        return dump_order(order, customer, lines)

    def versioned(self, order_id: Any, data: Any, expected_version: Any) -> tuple[SalesOrder, Any]:
        values, version = split_version(data if data is not None else {}, expected_version)
        order = self.order(order_id)
        check_version(order, version)
        return order, values

    def maybe_versioned(
        self, order_id: Any, data: Any, expected_version: Any
    ) -> tuple[SalesOrder, Any]:
        """An action: the version is checked when the caller sends one."""
        data = data if data is not None else {}
        given = expected_version is not None or (isinstance(data, dict) and "version" in data)
        if given:
            return self.versioned(order_id, data, expected_version)
        return self.order(order_id), data

    def next_code(self) -> str:
        year = self.context.now.astimezone(BUSINESS_TZ).year
        return format_code(CODE_PREFIX, year, self.next_sequence(year))

    def next_sequence(self, year: int) -> int:
        return allocate_sequence(self.session, CODE_PREFIX, year)

    def erp_codes(self, owner_id: str, department_id: str | None) -> dict[str, str | None]:
        """The salesperson's and the department's codes, which the ERP knows them by."""
        person = read_models.person_of_user(self.session, owner_id)
        department = self.session.get(Department, department_id) if department_id else None
        return {
            "salesperson_code": person.code if person else None,
            "department_code": department.code if department else None,
        }

    # -- create --------------------------------------------------------------------------------
    def create(self, data: Any) -> dict[str, Any]:
        """A draft order entered directly, its totals by the quote rules."""
        self.principal.require(WRITE)
        values = load(OrderInputSchema(), data)
        customer = self.usable_customer(values["customer_id"])
        opportunity_id = None
        if values.get("opportunity_id") is not None:
            opportunity_id = self.opportunity_of(values["opportunity_id"], customer).id
        owner_id = values.get("owner_id") or self.principal.user_id
        if owner_id != self.principal.user_id and not read_models.person_of_user(
            self.session, owner_id
        ):
            raise ValidationFailed.on("owner_id", "is not a user of anyone in the organisation")
        placement = {
            "owner_id": owner_id,
            "department_id": self.department_of(owner_id),
            "region": customer.region,
            "category": customer.category,
        }
        written = ["owner_id"] if values.get("owner_id") else []
        self.check_placement(placement, [*written, "region", "category"], "order")
        currency = parse_currency(values.get("currency"))
        line_rows, summary = priced_lines(values)
        order = SalesOrder(
            id=uuid.uuid4(),
            code=self.next_code(),
            origin="crm",
            status=OrderStatus.DRAFT.value,
            customer_id=customer.id,
            opportunity_id=opportunity_id,
            order_date=values.get("order_date") or self.today(),
            requested_delivery_date=values.get("requested_delivery_date"),
            currency=currency,
            prices_include_tax=bool(values.get("prices_include_tax")),
            remark=values.get("remark"),
            created_by=self.context.actor_id,
            created_at=self.context.now,
            updated_at=self.context.now,
            **summary,
            **placement,
            **self.erp_codes(owner_id, placement["department_id"]),
        )
        self.session.add(order)
        self.session.flush()
        rows.replace_lines(self.session, order.id, line_rows)
        dumped = self.dumped(order)
        self.record_history(HISTORY_TYPE, order.id, "created", new=filled(dumped, ORDER_FIELDS))
        return dumped

    def create_from_quote(
        self, quote_id: str, data: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A draft order of an accepted quote: its customer, lines and figures as quoted."""
        self.principal.require(WRITE)
        values = load(OrderFromQuoteSchema(), data or {})
        quote_for_order = _provided("sales.repository.quotes", "quote_for_order")
        if quote_for_order is None:
            raise Unavailable("quotes are not available in this installation")
        key = lookup_id(quote_id)
        if key is None:
            raise ValidationFailed.on("quote_id", "is not a quote id")
        quote = quote_for_order(self.session, key, self.principal)
        if quote.status != "accepted":
            raise Conflict(
                f"quote {quote.code} is {quote.status}; only an accepted quote becomes an order",
                {"reason": "quote_not_accepted", "status": quote.status},
            )
        earlier = rows.live_order_of_quote(self.session, quote.id)
        if earlier is not None:
            raise Conflict(
                f"quote {quote.code} is already order {earlier.code}",
                {"reason": "quote_ordered", "order_id": str(earlier.id), "order": earlier.code},
            )
        customer = self.usable_customer(quote.customer_id)
        line_rows = [
            {
                "line_no": line.line_no,
                "item_code": line.item_code,
                "item_name": line.item_name,
                "spec": line.spec,
                "unit": line.unit,
                "quantity": line.quantity,
                "unit_price": line.unit_price,
                "discount_kind": "amount" if line.discount else None,
                "discount_value": line.discount if line.discount else None,
                "tax_rate": line.tax_rate,
                "amount": quantize_fen(line.quantity * line.unit_price),
                "discount": line.discount,
                "net": line.net,
                "tax": line.tax,
                "gross": line.gross,
                "shipped": Decimal(0),
            }
            for line in quote.lines
        ]
        order = SalesOrder(
            id=uuid.uuid4(),
            code=self.next_code(),
            origin="crm",
            status=OrderStatus.DRAFT.value,
            customer_id=customer.id,
            opportunity_id=quote.opportunity_id,
            quote_id=quote.id,
            quote_version_no=quote.version_no,
            owner_id=quote.owner_id,
            department_id=quote.department_id,
            region=quote.region,
            category=quote.category,
            order_date=values.get("order_date") or self.today(),
            requested_delivery_date=values.get("requested_delivery_date"),
            currency=quote.currency,
            prices_include_tax=quote.prices_include_tax,
            amount=sum((row["amount"] for row in line_rows), Decimal(0)),
            discount=sum((row["discount"] for row in line_rows), Decimal(0)),
            net=quote.net,
            tax=quote.tax,
            gross=quote.gross,
            remark=values.get("remark"),
            created_by=self.context.actor_id,
            created_at=self.context.now,
            updated_at=self.context.now,
            **self.erp_codes(quote.owner_id, quote.department_id),
        )
        self.session.add(order)
        self.session.flush()
        rows.replace_lines(self.session, order.id, line_rows)
        mark_quote_ordered = _provided("sales.repository.quotes", "mark_quote_ordered")
        if mark_quote_ordered is not None:
            mark_quote_ordered(self.session, quote.id, order.id)
        dumped = self.dumped(order)
        self.record_history(
            HISTORY_TYPE, order.id, "created_from_quote", new=filled(dumped, ORDER_FIELDS)
        )
        return dumped

    # -- read ----------------------------------------------------------------------------------
    def get(self, order_id: Any) -> dict[str, Any]:
        self.principal.require(READ)
        return self.dumped(self.order(order_id))

    def list(self, query: Any) -> dict[str, Any]:
        self.principal.require(READ)
        params = load(OrderQuerySchema(), query)
        for name in ("created_from", "created_to"):
            if params.get(name) is not None:
                day = params[name] + timedelta(days=1 if name == "created_to" else 0)
                params[name] = datetime(day.year, day.month, day.day, tzinfo=BUSINESS_TZ)
        page = rows.orders_page(self.session, params, self.visible)
        customers = {
            c.id: c
            for c in (
                self.session.get(Customer, cid) for cid in {o.customer_id for o in page.items}
            )
            if c is not None
        }
        return {
            "items": [dump_order(o, customers.get(o.customer_id), None) for o in page.items],
            "next_cursor": page.next_cursor,
        }

    def shipments(self, order_id: Any) -> dict[str, Any]:
        self.principal.require(READ)
        order = self.order(order_id)
        items = [
            {
                "shipment_no": shipment.shipment_no,
                "shipped_at": shipment.shipped_at,
                "lines": [
                    {
                        "line_no": line.line_no,
                        "item_code": line.item_code,
                        "quantity": line.quantity,
                        "serial_numbers": line.serial_numbers,
                        "issue": line.issue,
                        "issue_quantity": line.issue_quantity,
                    }
                    for line in lines
                ],
            }
            for shipment, lines in rows.shipments_of(self.session, order.id)
        ]
        return dump(shipments_schema, {"order_id": order.id, "items": items})

    # -- change --------------------------------------------------------------------------------
    def update(self, order_id: Any, changes: Any, expected_version: Any) -> dict[str, Any]:
        """Change a draft: its dates, remark, currency, discounts or (all of) its lines."""
        self.principal.require(WRITE)
        order, values = self.versioned(order_id, changes, expected_version)
        given = load(OrderUpdateSchema(), values)
        if order.status != OrderStatus.DRAFT:
            raise Conflict(
                f"order {order.code} is {order.status}; only a draft can be changed",
                {"reason": "not_draft", "status": order.status},
            )
        before = self.dumped(order)
        if "opportunity_id" in given:
            opportunity_id = given["opportunity_id"]
            if opportunity_id is not None:
                customer = self.usable_customer(order.customer_id)
                opportunity_id = self.opportunity_of(opportunity_id, customer).id
            order.opportunity_id = opportunity_id
        for name in ("order_date", "requested_delivery_date", "remark"):
            if name in given:
                setattr(order, name, given[name])
        if "currency" in given:
            order.currency = parse_currency(given["currency"]) or DEFAULT_CURRENCY
        if "prices_include_tax" in given:
            order.prices_include_tax = given["prices_include_tax"]
        order.updated_at = self.context.now
        pricing = {"lines", "document_discount", "prices_include_tax"}
        if pricing & set(given):
            current = {
                "lines": given.get("lines") or self.input_lines(order),
                "prices_include_tax": order.prices_include_tax,
                "document_discount": given.get("document_discount", self.input_discount(order)),
            }
            line_rows, summary = priced_lines(current)
            for name, value in summary.items():
                setattr(order, name, value)
            rows.replace_lines(self.session, order.id, line_rows)
        self.session.flush()
        dumped = self.dumped(order)
        self.record_history(HISTORY_TYPE, order.id, "updated", _changes(before, dumped))
        return dumped

    def input_lines(self, order: SalesOrder) -> Sequence[dict[str, Any]]:
        """The stored lines as input, to price again."""
        return [
            {
                "item_code": line.item_code,
                "item_name": line.item_name,
                "spec": line.spec,
                "unit": line.unit,
                "quantity": line.quantity,
                "unit_price": line.unit_price,
                "tax_rate": line.tax_rate,
                "discount": (
                    {"kind": line.discount_kind, "value": line.discount_value}
                    if line.discount_kind
                    else None
                ),
            }
            for line in rows.lines_of(self.session, order.id)
        ]

    def input_discount(self, order: SalesOrder) -> dict[str, Any] | None:
        if not order.document_discount_kind:
            return None
        return {"kind": order.document_discount_kind, "value": order.document_discount_value}

    # -- confirm, approve, send back -----------------------------------------------------------
    def confirm(self, order_id: Any, data: Any, expected_version: Any) -> dict[str, Any]:
        """Check the customer's credit: within it the order is confirmed and sent to the ERP;
        beyond it the order waits for a manager's approval."""
        self.principal.require(WRITE)
        order, _values = self.maybe_versioned(order_id, data, expected_version)
        current = OrderStatus(order.status)
        if current is not OrderStatus.DRAFT:
            raise Conflict(
                f"order {order.code} is {order.status}; only a draft is confirmed",
                {"reason": "not_draft", "status": order.status},
            )
        self.usable_customer(order.customer_id)
        check = self.credit_check(order)
        order.credit_outcome = check.outcome.value
        order.credit_limit = check.credit_limit
        order.credit_exposure = check.exposure
        target = status_on_confirm(check.needs_approval)
        check_order_transition(current, target)
        if target is OrderStatus.CONFIRMED:
            return self.send(order, current)
        return self.move(order, current, target, "confirm")

    def credit_check(self, order: SalesOrder) -> credit.CreditCheck:
        exposure = customer_exposure(self.session, order.customer_id)
        limit = None
        when_no_limit = self.when_no_limit
        if exposure is not None and exposure.credit_limit is not None:
            currency = exposure.currency or DEFAULT_CURRENCY
            if currency == order.currency:
                limit = credit.CreditLimit(Decimal(exposure.credit_limit), currency)
            else:
                when_no_limit = credit.WhenNoLimit.REQUIRE_APPROVAL
        outstanding = Decimal(exposure.outstanding) if exposure is not None else Decimal(0)
        return credit.check_credit(
            order_amount=order.gross,
            outstanding=outstanding,
            credit_limit=limit,
            when_no_limit=when_no_limit,
            open_orders=rows.open_orders_amount(
                self.session, order.customer_id, order.currency, order.id
            ),
            currency=order.currency,
        )

    def approve(self, order_id: Any, data: Any) -> dict[str, Any]:
        order, comment = self.decision(order_id, data)
        order.approved_by = self.principal.user_id
        order.approved_at = self.context.now
        order.approval_comment = comment
        return self.send(order, OrderStatus.PENDING_APPROVAL)

    def reject(self, order_id: Any, data: Any) -> dict[str, Any]:
        """Send the order back to its owner as a draft, with the reason."""
        order, comment = self.decision(order_id, data)
        if not comment:
            raise ValidationFailed.on("comment", "is required to send an order back")
        order.approval_comment = comment
        return self.move(order, OrderStatus.PENDING_APPROVAL, OrderStatus.DRAFT, "send_back")

    def decision(self, order_id: Any, data: Any) -> tuple[SalesOrder, str | None]:
        self.principal.require(APPROVE)
        values = load(OrderDecisionSchema(), data or {})
        order = self.order(order_id)
        if order.owner_id == self.principal.user_id:
            raise Forbidden(
                "nobody approves their own order", {"reason": "own_order", "order": order.code}
            )
        if order.status != OrderStatus.PENDING_APPROVAL:
            raise Conflict(
                f"order {order.code} is {order.status}, not waiting for approval",
                {"reason": "not_pending_approval", "status": order.status},
            )
        comment: str | None = values.get("comment")
        return order, comment

    def send(self, order: SalesOrder, current: OrderStatus) -> dict[str, Any]:
        """Confirm the order: ``order_confirmed`` for the ERP, and the opportunity won if
        this is its first order."""
        check_order_transition(current, OrderStatus.CONFIRMED)
        order.confirmed_at = self.context.now
        dumped = self.move(order, current, OrderStatus.CONFIRMED, "confirm")
        lines = rows.lines_of(self.session, order.id)
        self.context.publish(events.ORDER_CONFIRMED, order_request(self.session, order, lines))
        self.win_opportunity(order)
        return dumped

    def move(
        self, order: SalesOrder, current: OrderStatus, target: OrderStatus, change: str
    ) -> dict[str, Any]:
        order.status = target.value
        order.updated_at = self.context.now
        self.session.flush()
        dumped = self.dumped(order)
        self.record_history(
            HISTORY_TYPE,
            order.id,
            change,
            [_field_change("status", current.value, target.value)],
        )
        self.context.publish(
            events.ORDER_STATUS_CHANGED, status_changed(dumped, current.value, "crm")
        )
        return dumped

    def win_opportunity(self, order: SalesOrder) -> None:
        """Win the order's opportunity when this is its first confirmed order (into the won
        stage, whatever stage it was in); should that fail the opportunity stays open and the
        order is confirmed anyway."""
        if order.opportunity_id is None:
            return
        if rows.other_sent_orders_of_opportunity(self.session, order.opportunity_id, order.id):
            return
        opportunity = self.session.get(Opportunity, order.opportunity_id)
        if opportunity is None or opportunity.status != "open":
            return
        opportunities = Opportunities(self.context)
        try:
            with self.session.begin_nested():
                process = opportunities.processes.definition_of(opportunity.process_id)
                change = won_by_order(process, opportunity.status, order.code)
                opportunities.apply_change(opportunity, process, change)
        except (ValidationFailed, Conflict) as exc:
            self.session.refresh(opportunity)
            log.warning(
                "opportunity %s stays open after order %s was confirmed: %s",
                opportunity.code,
                order.code,
                exc,
            )

    def rework(self, order_id: Any, data: Any) -> dict[str, Any]:
        """Take an order the ERP rejected back to a draft, to change and confirm again (the
        ERP's reason stays on it until then)."""
        self.principal.require(WRITE)
        order, _values = self.maybe_versioned(order_id, data, None)
        current = OrderStatus(order.status)
        if current is not OrderStatus.REJECTED:
            raise Conflict(
                f"order {order.code} is {order.status}; only an order the ERP rejected is reworked",
                {"reason": "not_rejected", "status": order.status},
            )
        check_order_transition(current, OrderStatus.DRAFT)
        order.credit_outcome = order.credit_limit = order.credit_exposure = None
        order.approved_by = order.approved_at = order.confirmed_at = None
        order.erp_status_at = None
        return self.move(order, current, OrderStatus.DRAFT, "rework")

    # -- cancel --------------------------------------------------------------------------------
    def cancel(self, order_id: Any, data: Any) -> dict[str, Any]:
        """Cancel an order the ERP never had; ask the ERP to cancel one it has."""
        self.principal.require(WRITE)
        values = load(OrderCancelSchema(), data or {})
        order = self.order(order_id)
        current = OrderStatus(order.status)
        target = status_on_cancel(current)
        order.cancel_reason = values["reason"]
        dumped = self.move(order, current, target, "cancel")
        if target is OrderStatus.CANCEL_REQUESTED:
            self.context.publish(
                events.ORDER_CANCEL_REQUESTED,
                {
                    "crm_order_id": str(order.id),
                    "crm_order_code": order.code,
                    "erp_order_no": order.erp_order_no,
                    "reason": values["reason"],
                    **routing(order),
                },
            )
        return dumped

    def history_of(self, order_id: Any, cursor: Any, limit: Any) -> dict[str, Any]:
        self.principal.require(READ)
        return self.history(HISTORY_TYPE, self.order(order_id).id, cursor, limit)


def _field_change(field: str, old: Any, new: Any) -> FieldChange:
    return FieldChange(field, old, new)


def _changes(before: dict[str, Any], after: dict[str, Any]) -> list[FieldChange]:
    return [
        _field_change(name, before.get(name), after.get(name))
        for name in (*ORDER_FIELDS, "lines")
        if before.get(name) != after.get(name)
    ]
