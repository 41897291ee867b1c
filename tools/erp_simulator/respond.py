"""How the simulated ERP answers the orders the CRM sends it (``respond`` mode).

``order_confirmed`` is booked (``order_created`` with a new ERP order number and the CRM's
order id) unless a rule refuses it (``order_rejected`` with the reason). With ``fulfil`` a
booked order is also shipped in full and invoiced at once, and with ``pay`` the invoice is
paid too. ``order_cancel_requested`` cancels a booked order that has not been fulfilled
(``order_cancelled``); otherwise the ERP says nothing and the order goes on. A request seen
before gets the same answer again, same event ids, so the CRM applies it once.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from tools.erp_simulator.world import CHINA, text

PAYMENT_DAYS = 30


class UnreadableRequest(ValueError):
    """Not an order request the ERP can act on: it goes to the ERP's dead letters."""


@dataclass(frozen=True)
class Rules:
    reject_above: Decimal | None = None
    """Refuse an order whose total (tax included) is more than this."""
    reject_items: frozenset[str] = frozenset()
    """Refuse an order with any of these item codes (items the ERP has blocked)."""
    fulfil: bool = False
    pay: bool = False

    def refusal(self, data: dict[str, Any]) -> str | None:
        blocked = sorted({line["item_code"] for line in data["lines"]} & self.reject_items)
        if blocked:
            return f"物料 {', '.join(blocked)} 已停用"
        if self.reject_above is not None and decimal(data["total_amount"]) > self.reject_above:
            return f"订单金额 {data['total_amount']} 超出客户信用额度"
        return None


def decimal(value: Any) -> Decimal:
    if not isinstance(value, str):
        raise UnreadableRequest(f"{value!r} is not a decimal string")
    try:
        return Decimal(value)
    except InvalidOperation:
        raise UnreadableRequest(f"{value!r} is not a decimal string") from None


@dataclass
class Responder:
    rules: Rules = field(default_factory=Rules)
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(CHINA)
    answers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """The answers given, by request event id."""
    booked: dict[str, str] = field(default_factory=dict)
    """ERP order number by CRM order id."""
    fulfilled: set[str] = field(default_factory=set)
    sequence: int = 0
    last_at: dt.datetime | None = None

    def answer(self, envelope: Any) -> list[dict[str, Any]]:
        """The events the ERP publishes in answer to ``envelope``."""
        if not isinstance(envelope, dict) or not isinstance(envelope.get("data"), dict):
            raise UnreadableRequest("not an event envelope")
        event_id = str(envelope.get("event_id"))
        if event_id not in self.answers:
            try:
                self.answers[event_id] = self._answer(str(envelope.get("type")), envelope["data"])
            except (KeyError, TypeError) as exc:
                raise UnreadableRequest(f"a field is missing or of the wrong kind: {exc}") from None
        return self.answers[event_id]

    def _answer(self, event_type: str, data: dict[str, Any]) -> list[dict[str, Any]]:
        if event_type == "order_confirmed":
            return self._confirmed(data)
        if event_type == "order_cancel_requested":
            return self._cancel_requested(data)
        raise UnreadableRequest(f"the ERP does not act on {event_type!r}")

    def _confirmed(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        order_id = str(data["crm_order_id"])
        reason = self.rules.refusal(data)
        if reason is not None:
            return [self.event("order_rejected", {"crm_order_id": order_id, "reason": reason})]
        now = self.clock()
        confirmed_before = order_id in self.booked
        order_no = self.booked.get(order_id) or self.number("SO", now)
        self.booked[order_id] = order_no
        customer = {
            "crm_customer_id": data["customer"]["crm_customer_id"],
            "erp_code": data["customer"].get("erp_code") or self.customer_code(data["customer"]),
            "credit_code": data["customer"].get("credit_code"),
            "name": data["customer"]["name"],
        }
        lines = [
            {
                "line_no": line["line_no"],
                "item_code": line["item_code"],
                "item_name": line["item_name"],
                "quantity": line["quantity"],
                "unit": line["unit"],
                "unit_price": text(
                    (decimal(line["net_amount"]) / decimal(line["quantity"])).quantize(
                        Decimal("0.000001")
                    )
                ),
                "tax_rate": line["tax_rate"],
                "amount": line["amount"],
            }
            for line in data["lines"]
        ]
        answers = [
            self.event(
                "order_created",
                {
                    "erp_order_no": order_no,
                    "crm_order_id": order_id,
                    "customer": customer,
                    "order_date": now.date().isoformat(),
                    "currency": data["currency"],
                    "lines": lines,
                    "total_amount": data["total_amount"],
                    "salesperson_code": data.get("salesperson_code"),
                    "department_code": data.get("department_code"),
                },
            )
        ]
        if self.rules.fulfil and not confirmed_before:
            answers += self.fulfil(order_no, customer, data)
        return answers

    def fulfil(
        self, order_no: str, customer: dict[str, Any], data: dict[str, Any]
    ) -> list[dict[str, Any]]:
        self.fulfilled.add(order_no)
        now = self.clock()
        invoice_no = self.number("INV", now)
        events = [
            self.event(
                "order_shipped",
                {
                    "erp_order_no": order_no,
                    "shipment_no": self.number("SH", now),
                    "shipped_at": now.isoformat(),
                    "lines": [
                        {
                            "line_no": line["line_no"],
                            "item_code": line["item_code"],
                            "quantity": line["quantity"],
                            "serial_numbers": [],
                        }
                        for line in data["lines"]
                    ],
                },
            ),
            self.event(
                "invoice_issued",
                {
                    "invoice_no": invoice_no,
                    "erp_order_no": order_no,
                    "customer": customer,
                    "issued_at": now.isoformat(),
                    "due_date": (now.date() + dt.timedelta(days=PAYMENT_DAYS)).isoformat(),
                    "amount": data["total_amount"],
                    "tax_amount": data["tax_amount"],
                    "currency": data["currency"],
                },
            ),
        ]
        if self.rules.pay:
            events.append(
                self.event(
                    "payment_received",
                    {
                        "payment_no": self.number("RC", now),
                        "customer": customer,
                        "received_at": now.isoformat(),
                        "amount": data["total_amount"],
                        "currency": data["currency"],
                        "allocations": [{"invoice_no": invoice_no, "amount": data["total_amount"]}],
                    },
                )
            )
        return events

    def _cancel_requested(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        order_no = self.booked.get(str(data["crm_order_id"]))
        if order_no is None or order_no in self.fulfilled:
            return []
        self.fulfilled.add(order_no)
        return [self.event("order_cancelled", {"erp_order_no": order_no, "reason": data["reason"]})]

    # -- helpers ---------------------------------------------------------------------------
    def number(self, prefix: str, now: dt.datetime) -> str:
        self.sequence += 1
        return f"{prefix}{now:%Y%m%d}-{self.sequence:04d}"

    def customer_code(self, customer: dict[str, Any]) -> str:
        """The code the ERP gives a customer it creates for a CRM order."""
        return "C" + uuid.UUID(str(customer["crm_customer_id"])).hex[:8].upper()

    def event(self, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
        """An answer event; each occurs after the one before, so the CRM keeps their order."""
        at = self.clock()
        if self.last_at is not None and at <= self.last_at:
            at = self.last_at + dt.timedelta(milliseconds=1)
        self.last_at = at
        return {
            "event_id": str(uuid.uuid4()),
            "type": event_type,
            "version": 1,
            "occurred_at": at.isoformat(),
            "source": "erp",
            "data": data,
        }
