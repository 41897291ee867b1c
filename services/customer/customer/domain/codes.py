"""Customer codes people quote: ``C`` + year + a six-digit sequence per year (C2026000123)."""

from __future__ import annotations

import re

PREFIX = "C"
MAX_SEQUENCE = 999_999
_CODE = re.compile(r"C(\d{4})(\d{6})")


def format_customer_code(year: int, sequence: int) -> str:
    if not 1 <= sequence <= MAX_SEQUENCE:
        raise ValueError(f"customer code sequence {sequence} is outside 1..{MAX_SEQUENCE}")
    if not 1000 <= year <= 9999:
        raise ValueError(f"year {year} does not have four digits")
    return f"{PREFIX}{year:04d}{sequence:06d}"


def parse_customer_code(code: str) -> tuple[int, int] | None:
    """(year, sequence) of a well-formed code, else None."""
    match = _CODE.fullmatch((code or "").strip().upper())
    if not match or int(match.group(2)) == 0:
        return None
    return int(match.group(1)), int(match.group(2))


def is_customer_code(code: str) -> bool:
    return parse_customer_code(code) is not None
