"""Money: a ``Decimal`` amount with a currency, never a float."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from marshmallow import ValidationError, fields

DEFAULT_CURRENCY = "CNY"
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str = DEFAULT_CURRENCY

    @classmethod
    def of(cls, amount: str | int | Decimal, currency: str = DEFAULT_CURRENCY) -> Money:
        if isinstance(amount, float):
            raise TypeError("money is never a float; pass a string or Decimal")
        try:
            value = Decimal(amount)
        except InvalidOperation:
            raise ValueError(f"{amount!r} is not an amount") from None
        if not value.is_finite():
            raise ValueError(f"{amount!r} is not an amount")
        return cls(value.quantize(CENT, rounding=ROUND_HALF_UP), currency.upper())

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot mix {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, factor: int | Decimal) -> Money:
        if isinstance(factor, float):
            raise TypeError("money is never multiplied by a float")
        return Money.of(self.amount * Decimal(factor), self.currency)

    def as_dict(self) -> dict[str, str]:
        return {"amount": f"{self.amount:.2f}", "currency": self.currency}


class MoneyField(fields.Field[Money]):
    """Serializes ``Money`` as ``{"amount": "12.30", "currency": "CNY"}`` and loads it back."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else value.as_dict()

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Money:
        if not isinstance(value, dict) or "amount" not in value:
            raise ValidationError('expected {"amount": "<decimal string>", "currency": "CNY"}')
        amount = value["amount"]
        if isinstance(amount, float):
            raise ValidationError("amount must be a decimal string, not a float")
        currency = str(value.get("currency") or DEFAULT_CURRENCY)
        if len(currency) != 3 or not currency.isalpha():
            raise ValidationError("currency must be a three-letter ISO 4217 code")
        try:
            return Money.of(str(amount), currency)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
