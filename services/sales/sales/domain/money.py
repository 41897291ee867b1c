"""Money: a ``Decimal`` amount to the fen (0.01) with an ISO 4217 currency, CNY by default.

Amounts come in as decimal strings, ``Decimal`` or whole numbers, never as floats (a float has
already lost the exact value), and go out as decimal strings (``"1234.50"``). Rounding is half
up to the fen, as people round money by hand.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from crm_common.errors import ValidationFailed

DEFAULT_CURRENCY = "CNY"
FEN = Decimal("0.01")
MAX_INTEGER_DIGITS = 16
"""Amounts are stored as Numeric(18, 2): at most 16 digits before the point."""

_DECIMAL_TEXT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_CURRENCY = re.compile(r"[A-Z]{3}")
NOT_A_NUMBER = 'must be a decimal number written as a string, such as "1234.50"'


def quantize_fen(amount: Decimal) -> Decimal:
    """``amount`` rounded half up to the fen."""
    return amount.quantize(FEN, rounding=ROUND_HALF_UP)


def parse_decimal(value: object, field: str) -> Decimal:
    """An exact decimal from a string, a ``Decimal`` or a whole number; floats are refused."""
    if isinstance(value, bool | float):
        raise ValidationFailed.on(field, NOT_A_NUMBER)
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValidationFailed.on(field, "must be a finite number")
        return value
    if isinstance(value, str):
        text = value.strip()
        if _DECIMAL_TEXT.fullmatch(text):
            try:
                return Decimal(text)
            except InvalidOperation:
                pass
    raise ValidationFailed.on(field, NOT_A_NUMBER)


def parse_amount(
    value: object, field: str = "amount", *, allow_negative: bool = False, allow_zero: bool = True
) -> Decimal:
    """A money amount rounded to the fen, within what the database stores."""
    amount = quantize_fen(parse_decimal(value, field))
    if amount < 0 and not allow_negative:
        raise ValidationFailed.on(field, "cannot be negative")
    if amount == 0 and not allow_zero:
        raise ValidationFailed.on(field, "must be more than zero")
    if abs(amount) >= Decimal(10) ** MAX_INTEGER_DIGITS:
        raise ValidationFailed.on(field, f"has more than {MAX_INTEGER_DIGITS} digits")
    return amount


def parse_currency(value: object, field: str = "currency") -> str:
    """An ISO 4217 code in capitals; empty means CNY."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return DEFAULT_CURRENCY
    code = str(value).strip().upper()
    if not _CURRENCY.fullmatch(code):
        raise ValidationFailed.on(field, "must be a three-letter ISO 4217 code such as CNY")
    return code


def format_amount(amount: Decimal) -> str:
    """The amount as a plain decimal string with two places (never an exponent)."""
    return f"{quantize_fen(amount):f}"


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str = DEFAULT_CURRENCY

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal) or not self.amount.is_finite():
            raise TypeError(f"a money amount is a finite Decimal, not {self.amount!r}")
        if not _CURRENCY.fullmatch(self.currency):
            raise ValueError(f"{self.currency!r} is not an ISO 4217 currency code")
        object.__setattr__(self, "amount", quantize_fen(self.amount))

    @classmethod
    def parse(
        cls,
        amount: object,
        currency: object = None,
        *,
        field: str = "amount",
        currency_field: str = "currency",
        allow_negative: bool = False,
        allow_zero: bool = True,
    ) -> Money:
        """Money from request values, ``ValidationFailed`` naming the field at fault."""
        return cls(
            parse_amount(amount, field, allow_negative=allow_negative, allow_zero=allow_zero),
            parse_currency(currency, currency_field),
        )

    @classmethod
    def zero(cls, currency: str = DEFAULT_CURRENCY) -> Money:
        return cls(Decimal(0), currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def times(self, factor: Decimal | int) -> Money:
        """This amount multiplied by a quantity, rounded to the fen."""
        return Money(self.amount * factor, self.currency)

    def __str__(self) -> str:
        return f"{format_amount(self.amount)} {self.currency}"

    def as_json(self) -> dict[str, str]:
        return {"amount": format_amount(self.amount), "currency": self.currency}


def total(items: Iterable[Money], currency: str = DEFAULT_CURRENCY) -> Money:
    """The sum of ``items``, all in ``currency`` (``ValueError`` on another currency)."""
    result = Money.zero(currency)
    for item in items:
        result = result + item
    return result
