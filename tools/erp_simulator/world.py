"""A distributor's ERP in miniature: its item master, price lists and customers, and the stream
of events a stretch of its business publishes, with what that stream should leave behind.

Everything follows from the seed: the same seed and options give the same events, ids
included. Events come in the order the ERP's clock made them; ``Event.follows`` names the
event each one depends on (a shipment its order, an invoice its order, a payment or a
corrected invoice the invoice), which ``delivery`` may deliver it before.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Generic, TypeVar

T = TypeVar("T")
FEN = Decimal("0.01")
ZERO = Decimal("0.00")
CHINA = dt.timezone(dt.timedelta(hours=8))
CATEGORIES = (("VIP", 10), ("A", 20), ("B", 40), ("C", 30))
CATEGORY_PRICE = {"VIP": Decimal("0.88"), "A": Decimal("0.92"), "B": Decimal("0.96")}
PAYMENT_TERMS_DAYS = (30, 30, 45, 60, 90)
CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def fen(amount: Decimal) -> Decimal:
    return amount.quantize(FEN, rounding=ROUND_HALF_UP)


def text(amount: Decimal) -> str:
    return f"{amount:f}"


# -- master data ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Item:
    item_code: str
    name: str
    spec: str
    unit: str
    category: str
    list_price: Decimal
    quantities: tuple[int, int]
    """The range of quantities customers order at once."""
    serialised: bool = False
    tax_rate: Decimal = Decimal("0.13")


@dataclass(frozen=True)
class Family:
    category: str
    name: str
    unit: str
    prefix: str
    variants: tuple[tuple[str, str, int], ...]
    """(code suffix, spec, list price in yuan) of each model."""
    quantities: tuple[int, int]
    serialised: bool = False


FAMILIES = (
    Family(
        "轴承",
        "深沟球轴承",
        "个",
        "BRG",
        tuple(
            (f"{size}-{seal}", f"{size}-{seal} {bore}×{outer}×{width}mm", price)
            for size, bore, outer, width, price in (
                ("6201", 12, 32, 10, 9),
                ("6204", 20, 47, 14, 14),
                ("6205", 25, 52, 15, 18),
                ("6206", 30, 62, 16, 24),
                ("6208", 40, 80, 18, 39),
                ("6310", 50, 110, 27, 118),
            )
            for seal in ("2RS", "ZZ")
        ),
        (10, 400),
    ),
    Family(
        "轴承",
        "圆锥滚子轴承",
        "套",
        "TRB",
        (("30205", "30205 25×52×16.25mm", 32), ("32210", "32210 50×90×24.75mm", 96)),
        (10, 200),
    ),
    Family(
        "电机",
        "三相异步电动机",
        "台",
        "MTR",
        tuple(
            (f"YE3-{frame}-4", f"YE3-{frame}-4 {power} 380V IP55", price)
            for frame, power, price in (
                ("90L", "1.5kW", 1180),
                ("112M", "4kW", 2350),
                ("132M", "7.5kW", 3980),
                ("160L", "15kW", 7200),
            )
        ),
        (1, 12),
        serialised=True,
    ),
    Family(
        "电机",
        "变频调速电机",
        "台",
        "VFM",
        (("YVF2-100L-4", "YVF2-100L-4 2.2kW 变频", 2680),),
        (1, 6),
        serialised=True,
    ),
    Family(
        "阀门",
        "不锈钢球阀",
        "个",
        "VLV-Q41F",
        tuple(
            (f"DN{dn}", f"Q41F-16P DN{dn} PN16 CF8M", price)
            for dn, price in ((25, 168), (50, 386), (80, 920), (100, 1350))
        ),
        (2, 80),
    ),
    Family(
        "阀门",
        "对夹蝶阀",
        "个",
        "VLV-D71X",
        tuple(
            (f"DN{dn}", f"D71X-16 DN{dn} 球墨铸铁 EPDM", price)
            for dn, price in ((100, 420), (150, 690), (200, 1080))
        ),
        (2, 40),
    ),
    Family(
        "仪表",
        "压力变送器",
        "台",
        "INS-PT",
        (
            ("1.6MPA", "0-1.6MPa 4-20mA M20×1.5 0.5级", 680),
            ("4MPA", "0-4MPa 4-20mA M20×1.5 0.25级", 920),
        ),
        (1, 20),
        serialised=True,
    ),
    Family(
        "仪表",
        "电磁流量计",
        "台",
        "INS-EMF",
        tuple(
            (f"DN{dn}", f"DN{dn} PN16 316L电极 一体式", price)
            for dn, price in ((25, 4200), (50, 5600), (100, 8900))
        ),
        (1, 5),
        serialised=True,
    ),
    Family(
        "仪表",
        "温度变送器",
        "台",
        "INS-TT",
        (("PT100", "PT100 0-200℃ 4-20mA 一体化", 360),),
        (1, 30),
        serialised=True,
    ),
    Family(
        "工具",
        "扭力扳手",
        "把",
        "TL-TW",
        (("20-100", '1/2" 20-100N·m 预置式', 286), ("40-200", '1/2" 40-200N·m 预置式', 398)),
        (1, 20),
    ),
    Family(
        "工具",
        "数显游标卡尺",
        "把",
        "TL-DC",
        (("150", "0-150mm 0.01mm", 185), ("300", "0-300mm 0.01mm", 420)),
        (1, 30),
    ),
    Family(
        "工具",
        "内六角扳手套装",
        "套",
        "TL-HX",
        (("9PC", "9件套 1.5-10mm S2钢", 48),),
        (5, 60),
    ),
)


def catalogue() -> tuple[Item, ...]:
    return tuple(
        Item(
            item_code=f"{family.prefix}-{suffix}",
            name=family.name,
            spec=spec,
            unit=family.unit,
            category=family.category,
            list_price=Decimal(price).quantize(FEN),
            quantities=family.quantities,
            serialised=family.serialised,
        )
        for family in FAMILIES
        for suffix, spec, price in family.variants
    )


@dataclass(frozen=True)
class Customer:
    erp_code: str
    name: str
    category: str
    crm_customer_id: str | None = None
    credit_code: str | None = None

    def named(self) -> dict[str, Any]:
        """The customer as events name it."""
        return {
            "crm_customer_id": self.crm_customer_id,
            "erp_code": self.erp_code,
            "credit_code": self.credit_code,
            "name": self.name,
        }


CITIES = (
    ("上海", "310115"),
    ("苏州", "320505"),
    ("无锡", "320214"),
    ("杭州", "330106"),
    ("宁波", "330212"),
    ("南京", "320111"),
    ("合肥", "340104"),
    ("青岛", "370212"),
    ("佛山", "440604"),
    ("东莞", "441900"),
)
TRADES = ("机电设备", "自动化工程", "流体控制", "工业装备", "五金机电", "精密机械", "环保设备")
SUFFIXES = ("有限公司", "有限责任公司", "股份有限公司")
BRANDS = "华恒信达泰和丰盛瑞鑫宏远永安通明德润晟博康"


def credit_code(rng: random.Random, division: str) -> str:
    """A unified social credit code with a correct check character (GB 32100-2015)."""
    body = "91" + division + "".join(rng.choice(CREDIT_ALPHABET[:10]) for _ in range(9))
    weights = [pow(3, i, 31) for i in range(17)]
    total = sum(CREDIT_ALPHABET.index(ch) * w for ch, w in zip(body, weights, strict=True))
    return body + CREDIT_ALPHABET[(31 - total % 31) % 31]


def weighted(rng: random.Random, choices: Iterable[tuple[str, int]]) -> str:
    names, weights = zip(*choices, strict=True)
    chosen: str = rng.choices(names, weights=weights)[0]
    return chosen


def generated_customers(rng: random.Random, count: int) -> tuple[Customer, ...]:
    """Customers the ERP has and the CRM may not (no CRM id)."""
    customers: list[Customer] = []
    names: set[str] = set()
    while len(customers) < count:
        city, division = rng.choice(CITIES)
        name = f"{city}{''.join(rng.sample(BRANDS, 2))}{rng.choice(TRADES)}{rng.choice(SUFFIXES)}"
        if name in names:
            continue
        names.add(name)
        customers.append(
            Customer(
                erp_code=f"C{len(customers) + 1:05d}",
                name=name,
                category=weighted(rng, CATEGORIES),
                credit_code=credit_code(rng, division),
            )
        )
    return tuple(customers)


def numbered_customer_records(rng: random.Random, count: int, label: str) -> list[dict[str, Any]]:
    """``count`` customers as the CRM holds them, for ``customers_from``: a random CRM id, the
    ERP code ``C00001``… and the name ``<label>001有限公司``…"""
    return [
        {
            "crm_customer_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "erp_code": f"C{number:05d}",
            "name": f"{label}{number:03d}有限公司",
        }
        for number in range(1, count + 1)
    ]


def customers_from(rng: random.Random, given: Iterable[dict[str, Any]]) -> tuple[Customer, ...]:
    """Customers from records with at least a CRM id (``crm_customer_id`` or ``id``); what a
    record lacks (ERP code, name, category, credit code) is made up."""
    customers = []
    for number, record in enumerate(given, start=1):
        crm_id = record.get("crm_customer_id") or record.get("id")
        if not crm_id:
            raise ValueError(f"customer {number} has neither crm_customer_id nor id: {record}")
        city, division = rng.choice(CITIES)
        customers.append(
            Customer(
                erp_code=record.get("erp_code") or f"C{number:05d}",
                name=record.get("name") or f"{city}客户{number:03d}有限公司",
                category=record.get("category") or weighted(rng, CATEGORIES),
                crm_customer_id=str(uuid.UUID(str(crm_id))),
                credit_code=record.get("credit_code") or credit_code(rng, division),
            )
        )
    if not customers:
        raise ValueError("no customers given")
    return tuple(customers)


# -- the stream ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Event:
    envelope: dict[str, Any]
    follows: str | None = None
    """The event id of the event this one depends on."""

    @property
    def event_id(self) -> str:
        return str(self.envelope["event_id"])

    @property
    def type(self) -> str:
        return str(self.envelope["type"])


@dataclass
class OrderLine:
    line_no: int
    item: Item
    quantity: Decimal
    unit_price: Decimal
    shipped: Decimal = ZERO
    invoiced: Decimal = ZERO

    @property
    def amount(self) -> Decimal:
        net = fen(self.quantity * self.unit_price)
        return net + fen(net * self.item.tax_rate)


@dataclass
class Order:
    erp_order_no: str
    customer: Customer
    lines: list[OrderLine]
    event_id: str
    cancelled: bool = False

    @property
    def status(self) -> str:
        if self.cancelled:
            return "cancelled"
        if all(line.shipped >= line.quantity for line in self.lines):
            return "shipped"
        if any(line.shipped for line in self.lines):
            return "partially_shipped"
        return "erp_created"


@dataclass
class Invoice:
    invoice_no: str
    customer: Customer
    erp_order_no: str
    amount: Decimal
    tax_amount: Decimal
    issued_at: dt.datetime
    due_date: dt.date
    event_id: str
    allocated: Decimal = ZERO
    revised: bool = False

    @property
    def outstanding(self) -> Decimal:
        return self.amount - self.allocated


@dataclass
class Ledger:
    """What the ERP knows as the stream goes; the expected outcome is read from it."""

    items: dict[str, Item] = field(default_factory=dict)
    active: dict[str, bool] = field(default_factory=dict)
    credit: dict[str, Decimal] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    invoices: dict[str, Invoice] = field(default_factory=dict)
    on_account: dict[str, Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))


class Pool(Generic[T]):
    """The documents some next step can apply to, drawn at random in constant time."""

    def __init__(self) -> None:
        self.members: list[T] = []
        self.places: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.members)

    def __contains__(self, member: T) -> bool:
        return id(member) in self.places

    def add(self, member: T) -> None:
        if member not in self:
            self.places[id(member)] = len(self.members)
            self.members.append(member)

    def discard(self, member: T) -> None:
        place = self.places.pop(id(member), None)
        if place is None:
            return
        last = self.members.pop()
        if place < len(self.members):
            self.members[place] = last
            self.places[id(last)] = place

    def choice(self, rng: random.Random) -> T:
        return self.members[rng.randrange(len(self.members))]


class Stream:
    """Makes the events; ``events(count)`` yields them in the ERP's order."""

    def __init__(
        self,
        seed: int,
        customers: tuple[Customer, ...] | None = None,
        start: dt.datetime = dt.datetime(2026, 1, 5, 8, 30, tzinfo=CHINA),
    ) -> None:
        self.rng = random.Random(seed)
        self.customers = customers or generated_customers(self.rng, 20)
        self.catalogue = catalogue()
        self.clock = start
        self.ledger = Ledger()
        self.counters: Counter[str] = Counter()
        self.open_orders: Pool[Order] = Pool()
        self.unshipped: Pool[Order] = Pool()
        self.to_invoice: Pool[Order] = Pool()
        self.unpaid: Pool[Invoice] = Pool()
        self.unpaid_of: dict[str, Pool[Invoice]] = defaultdict(Pool)
        self.correctable: Pool[Invoice] = Pool()

    # -- helpers ---------------------------------------------------------------------------
    def tick(self) -> dt.datetime:
        self.clock += dt.timedelta(minutes=self.rng.randint(1, 45), seconds=self.rng.randint(0, 59))
        return self.clock

    def number(self, prefix: str) -> str:
        day = self.clock.strftime("%Y%m%d")
        self.counters[prefix + day] += 1
        return f"{prefix}{day}-{self.counters[prefix + day]:04d}"

    def event(self, event_type: str, data: dict[str, Any], follows: str | None = None) -> Event:
        envelope = {
            "event_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "type": event_type,
            "version": 1,
            "occurred_at": self.tick().isoformat(),
            "source": "erp",
            "data": data,
        }
        return Event(envelope, follows)

    def price(self, item: Item, customer: Customer, quantity: Decimal) -> Decimal:
        factor = CATEGORY_PRICE.get(customer.category, Decimal(1))
        if quantity >= 200:
            factor = min(factor, Decimal("0.90"))
        elif quantity >= 50:
            factor = min(factor, Decimal("0.95"))
        return fen(self.ledger.items[item.item_code].list_price * factor)

    # -- master data -----------------------------------------------------------------------
    def item_updated(self, item: Item, active: bool = True) -> Event:
        self.ledger.items[item.item_code] = item
        self.ledger.active[item.item_code] = active
        return self.event(
            "item_updated",
            {
                "item_code": item.item_code,
                "name": item.name,
                "spec": item.spec,
                "unit": item.unit,
                "category": item.category,
                "list_price": text(item.list_price),
                "tax_rate": text(item.tax_rate),
                "active": active,
            },
        )

    def price_list(self, code: str, name: str, valid: tuple[dt.date, dt.date]) -> Event:
        lines: list[tuple[str, str | None, Decimal, Decimal]] = []
        for item in self.catalogue:
            price = self.ledger.items[item.item_code].list_price
            lines.append((item.item_code, None, Decimal(1), price))
            for category, factor in CATEGORY_PRICE.items():
                lines.append((item.item_code, category, Decimal(1), fen(price * factor)))
            if item.quantities[1] >= 100:
                lines.append((item.item_code, None, Decimal(50), fen(price * Decimal("0.95"))))
                lines.append((item.item_code, None, Decimal(200), fen(price * Decimal("0.90"))))
        return self.event(
            "price_list_updated",
            {
                "price_list_code": code,
                "name": name,
                "currency": "CNY",
                "valid_from": valid[0].isoformat(),
                "valid_to": valid[1].isoformat(),
                "lines": [
                    {
                        "item_code": item_code,
                        "customer_category": category,
                        "min_quantity": text(minimum),
                        "unit_price": text(price),
                    }
                    for item_code, category, minimum, price in lines
                ],
            },
        )

    def credit_updated(self, customer: Customer) -> Event:
        limit = Decimal(self.rng.choice((50, 100, 200, 300, 500, 800, 1000))) * 1000
        self.ledger.credit[customer.erp_code] = limit
        return self.event(
            "customer_credit_updated",
            {
                "customer": customer.named(),
                "credit_limit": text(limit.quantize(FEN)),
                "currency": "CNY",
            },
        )

    def master_data(self) -> Iterator[Event]:
        for item in self.catalogue:
            yield self.item_updated(item)
        year = self.clock.year
        yield self.price_list(
            f"PL-{year}-STD",
            f"{year} 标准价格表",
            (dt.date(year, 1, 1), dt.date(year, 12, 31)),
        )
        for customer in self.customers:
            yield self.credit_updated(customer)

    # -- business --------------------------------------------------------------------------
    def new_order(self) -> Event:
        customer = self.rng.choice(self.customers)
        sellable = [i for i in self.catalogue if self.ledger.active.get(i.item_code, True)]
        lines = []
        for line_no, item in enumerate(self.rng.sample(sellable, self.rng.randint(1, 4)), 1):
            quantity = Decimal(self.rng.randint(*item.quantities))
            lines.append(OrderLine(line_no, item, quantity, self.price(item, customer, quantity)))
        order_no = self.number("SO")
        event = self.event(
            "order_created",
            {
                "erp_order_no": order_no,
                "crm_order_id": None,
                "customer": customer.named(),
                "order_date": self.clock.date().isoformat(),
                "currency": "CNY",
                "lines": [
                    {
                        "line_no": line.line_no,
                        "item_code": line.item.item_code,
                        "item_name": line.item.name,
                        "quantity": text(line.quantity),
                        "unit": line.item.unit,
                        "unit_price": text(line.unit_price),
                        "tax_rate": text(line.item.tax_rate),
                        "amount": text(line.amount),
                    }
                    for line in lines
                ],
                "total_amount": text(sum((line.amount for line in lines), ZERO)),
                "salesperson_code": f"E{self.rng.randint(1001, 1030)}",
                "department_code": self.rng.choice(("D-EAST-1", "D-EAST-2", "D-SOUTH", "D-NORTH")),
            },
        )
        order = Order(order_no, customer, lines, event.event_id)
        self.ledger.orders[order_no] = order
        self.open_orders.add(order)
        self.unshipped.add(order)
        return event

    def shipment(self, order: Order) -> Event:
        shipped = []
        for line in order.lines:
            remaining = line.quantity - line.shipped
            if remaining <= 0:
                continue
            if remaining > 1 and self.rng.random() < 0.4:
                remaining = Decimal(self.rng.randint(1, int(remaining) - 1))
            line.shipped += remaining
            serials = []
            if line.item.serialised:
                serials = [
                    f"{line.item.item_code}-{self.rng.randint(100000, 999999)}"
                    for _ in range(int(remaining))
                ]
            shipped.append(
                {
                    "line_no": line.line_no,
                    "item_code": line.item.item_code,
                    "quantity": text(remaining),
                    "serial_numbers": serials,
                }
            )
        self.unshipped.discard(order)
        self.to_invoice.add(order)
        if order.status == "shipped":
            self.open_orders.discard(order)
        self.tick()
        return self.event(
            "order_shipped",
            {
                "erp_order_no": order.erp_order_no,
                "shipment_no": self.number("SH"),
                "shipped_at": self.clock.isoformat(),
                "lines": shipped,
            },
            follows=order.event_id,
        )

    def invoice(self, order: Order) -> Event:
        net = tax = ZERO
        for line in order.lines:
            quantity = line.shipped - line.invoiced
            line.invoiced = line.shipped
            line_net = fen(quantity * line.unit_price)
            net += line_net
            tax += fen(line_net * line.item.tax_rate)
        self.tick()
        invoice_no = self.number("INV")
        issued_at = self.clock
        due_date = issued_at.date() + dt.timedelta(days=self.rng.choice(PAYMENT_TERMS_DAYS))
        event = self.event(
            "invoice_issued",
            self.invoice_data(invoice_no, order, net + tax, tax, issued_at, due_date),
            follows=order.event_id,
        )
        invoice = Invoice(
            invoice_no,
            order.customer,
            order.erp_order_no,
            net + tax,
            tax,
            issued_at,
            due_date,
            event.event_id,
        )
        self.ledger.invoices[invoice_no] = invoice
        self.to_invoice.discard(order)
        for pool in (self.unpaid, self.unpaid_of[order.customer.erp_code], self.correctable):
            pool.add(invoice)
        return event

    def invoice_data(
        self,
        invoice_no: str,
        order: Order,
        amount: Decimal,
        tax: Decimal,
        issued_at: dt.datetime,
        due_date: dt.date,
    ) -> dict[str, Any]:
        return {
            "invoice_no": invoice_no,
            "erp_order_no": order.erp_order_no,
            "customer": order.customer.named(),
            "issued_at": issued_at.isoformat(),
            "due_date": due_date.isoformat(),
            "amount": text(amount),
            "tax_amount": text(tax),
            "currency": "CNY",
        }

    def corrected_invoice(self, invoice: Invoice) -> Event:
        """A price correction (a rebate of a few percent) of an invoice nothing was paid on:
        the same invoice number again, occurred later."""
        factor = Decimal(1) - Decimal(self.rng.randint(1, 5)) / 100
        invoice.amount, invoice.tax_amount = (
            fen(invoice.amount * factor),
            fen(invoice.tax_amount * factor),
        )
        invoice.revised = True
        self.correctable.discard(invoice)
        order = self.ledger.orders[invoice.erp_order_no]
        event = self.event(
            "invoice_issued",
            self.invoice_data(
                invoice.invoice_no,
                order,
                invoice.amount,
                invoice.tax_amount,
                invoice.issued_at,
                invoice.due_date,
            ),
            follows=invoice.event_id,
        )
        invoice.event_id = event.event_id
        return event

    def payment(self, customer: Customer, open_invoices: list[Invoice]) -> Event:
        chosen = self.rng.sample(open_invoices, min(len(open_invoices), self.rng.randint(1, 3)))
        chosen.sort(key=lambda invoice: invoice.invoice_no)
        allocations = []
        for invoice in chosen:
            amount = invoice.outstanding
            if self.rng.random() < 0.3:
                amount = fen(amount * Decimal(self.rng.randint(20, 80)) / 100) or amount
            invoice.allocated += amount
            self.correctable.discard(invoice)
            if not invoice.outstanding:
                self.unpaid.discard(invoice)
                self.unpaid_of[customer.erp_code].discard(invoice)
            allocations.append({"invoice_no": invoice.invoice_no, "amount": text(amount)})
        total = sum((Decimal(a["amount"]) for a in allocations), ZERO)
        if self.rng.random() < 0.05:
            extra = Decimal(self.rng.randint(1, 20)) * 100
            total += extra
            self.ledger.on_account[customer.erp_code] += extra
        return self.event(
            "payment_received",
            {
                "payment_no": self.number("RC"),
                "customer": customer.named(),
                "received_at": self.tick().isoformat(),
                "amount": text(total.quantize(FEN)),
                "currency": "CNY",
                "allocations": allocations,
            },
            follows=chosen[0].event_id,
        )

    def prepayment(self, customer: Customer) -> Event:
        amount = (Decimal(self.rng.randint(5, 100)) * 100).quantize(FEN)
        self.ledger.on_account[customer.erp_code] += amount
        return self.event(
            "payment_received",
            {
                "payment_no": self.number("RC"),
                "customer": customer.named(),
                "received_at": self.tick().isoformat(),
                "amount": text(amount),
                "currency": "CNY",
                "allocations": [],
            },
        )

    def cancellation(self, order: Order) -> Event:
        order.cancelled = True
        self.open_orders.discard(order)
        self.unshipped.discard(order)
        return self.event(
            "order_cancelled",
            {
                "erp_order_no": order.erp_order_no,
                "reason": self.rng.choice(("客户取消", "交期无法满足", "重复下单")),
            },
            follows=order.event_id,
        )

    def price_change(self, item: Item) -> Event:
        current = self.ledger.items[item.item_code]
        factor = Decimal(100 + self.rng.choice((-5, -3, 3, 5, 8))) / 100
        changed = dataclasses.replace(current, list_price=fen(current.list_price * factor))
        return self.item_updated(changed, active=self.rng.random() > 0.05)

    def business(self) -> Iterator[Event]:
        """Events of the ERP's daily work, for as long as they are asked for. Payments come
        more slowly than invoices, so receivables build up and some fall overdue."""
        rng = self.rng
        while True:
            roll = rng.random()
            if roll < 0.27 or not self.open_orders:
                yield self.new_order()
            elif roll < 0.52:
                yield self.shipment(self.open_orders.choice(rng))
            elif roll < 0.72 and self.to_invoice:
                yield self.invoice(self.to_invoice.choice(rng))
            elif roll < 0.88 and self.unpaid:
                customer = self.unpaid.choice(rng).customer
                yield self.payment(customer, self.unpaid_of[customer.erp_code].members)
            elif roll < 0.91 and self.correctable:
                yield self.corrected_invoice(self.correctable.choice(rng))
            elif roll < 0.93 and self.unshipped:
                yield self.cancellation(self.unshipped.choice(rng))
            elif roll < 0.96:
                yield self.price_change(rng.choice(self.catalogue))
            elif roll < 0.99:
                yield self.credit_updated(rng.choice(self.customers))
            else:
                yield self.prepayment(rng.choice(self.customers))

    def events(self, count: int) -> list[Event]:
        """The first ``count`` events (making an event changes the ledger, so none is made
        beyond them)."""
        made: list[Event] = []
        for source in (self.master_data(), self.business()):
            while len(made) < count and (event := next(source, None)) is not None:
                made.append(event)
        return made

    # -- what the stream implies -----------------------------------------------------------
    def expected(self) -> dict[str, Any]:
        """Per invoice its outstanding amount, per customer its receivable total (what its
        invoices still owe), money on account, credit limit, and per order its status and
        shipped quantities, as the ERP has them after the stream."""
        ledger = self.ledger
        receivable: dict[str, Decimal] = defaultdict(lambda: ZERO)
        invoice_count: Counter[str] = Counter()
        for invoice in ledger.invoices.values():
            receivable[invoice.customer.erp_code] += invoice.outstanding
            invoice_count[invoice.customer.erp_code] += 1
        return {
            "invoices": {
                no: {
                    "erp_order_no": inv.erp_order_no,
                    "customer": inv.customer.erp_code,
                    "amount": text(inv.amount),
                    "tax_amount": text(inv.tax_amount),
                    "allocated": text(inv.allocated),
                    "outstanding": text(inv.outstanding),
                    "due_date": inv.due_date.isoformat(),
                }
                for no, inv in sorted(ledger.invoices.items())
            },
            "customers": {
                c.erp_code: {
                    **c.named(),
                    "category": c.category,
                    "receivable": text(receivable[c.erp_code]),
                    "on_account": text(ledger.on_account[c.erp_code]),
                    "credit_limit": (
                        text(ledger.credit[c.erp_code].quantize(FEN))
                        if c.erp_code in ledger.credit
                        else None
                    ),
                    "invoices": invoice_count[c.erp_code],
                }
                for c in self.customers
            },
            "orders": {
                no: {
                    "customer": order.customer.erp_code,
                    "status": order.status,
                    "shipped": {str(line.line_no): text(line.shipped) for line in order.lines},
                }
                for no, order in sorted(ledger.orders.items())
            },
            "items": {
                code: {"list_price": text(item.list_price), "active": ledger.active[code]}
                for code, item in sorted(ledger.items.items())
            },
        }
