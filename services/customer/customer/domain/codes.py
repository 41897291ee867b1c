"""Customer codes people quote: ``C`` + year + a six-digit sequence per year (C2026000123).

The service hands out codes from a counter per year. A code given from outside (an import from
another system) is checked against the format and taken as it is, without moving the counter:
one far-away code must not use up the year. Handing out a code skips the codes already taken,
and a year whose sequences are all used is a refusal, not a crash.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from crm_common.errors import Conflict, ValidationFailed

PREFIX = "C"
MAX_SEQUENCE = 999_999
_CODE = re.compile(r"C(\d{4})(\d{6})")
CODE_FORMAT = "must look like C2026000123 (C, a four-digit year, a six-digit number from 000001)"


def format_customer_code(year: int, sequence: int) -> str:
    if not 1 <= sequence <= MAX_SEQUENCE:
        raise ValueError(f"customer code sequence {sequence} is outside 1..{MAX_SEQUENCE}")
    if not 1000 <= year <= 9999:
        raise ValueError(f"year {year} does not have four digits")
    return f"{PREFIX}{year:04d}{sequence:06d}"


def parse_customer_code(code: str) -> tuple[int, int] | None:
    """(year, sequence) of a well-formed code, else None."""
    match = _CODE.fullmatch((code or "").strip().upper())
    if not match or int(match.group(2)) == 0 or int(match.group(1)) < 1000:
        return None
    return int(match.group(1)), int(match.group(2))


def is_customer_code(code: str) -> bool:
    return parse_customer_code(code) is not None


def checked_customer_code(code: str, field: str = "code") -> str:
    """``code`` in its canonical form, or ``ValidationFailed`` on ``field``."""
    parsed = parse_customer_code(code)
    if parsed is None:
        raise ValidationFailed.on(field, CODE_FORMAT)
    return format_customer_code(*parsed)


def first_free_sequence(start: int, end: int, taken: Collection[int]) -> int | None:
    """The smallest sequence from ``start`` to ``end`` (inclusive) not in ``taken``."""
    for sequence in range(start, min(end, MAX_SEQUENCE) + 1):
        if sequence not in taken:
            return sequence
    return None


def codes_exhausted(year: int) -> Conflict:
    return Conflict(
        f"every customer code of {year} is taken ({PREFIX}{year}000001 to "
        f"{format_customer_code(year, MAX_SEQUENCE)})",
        {"reason": "customer_codes_exhausted", "year": year},
    )
