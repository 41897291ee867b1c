"""Codes people quote for sales records: a prefix, the year and a six-digit sequence per year
(``OPP-2026-000001``, ``EXP-2026-000001``)."""

from __future__ import annotations

import re

from crm_common.errors import Conflict

MAX_SEQUENCE = 999_999


def format_code(prefix: str, year: int, sequence: int) -> str:
    if not 1 <= sequence <= MAX_SEQUENCE:
        raise ValueError(f"{prefix} code sequence {sequence} is outside 1..{MAX_SEQUENCE}")
    if not 1000 <= year <= 9999:
        raise ValueError(f"year {year} does not have four digits")
    return f"{prefix}-{year:04d}-{sequence:06d}"


def parse_code(prefix: str, code: str) -> tuple[int, int] | None:
    """(year, sequence) of a well-formed code with ``prefix``, else None."""
    match = re.fullmatch(rf"{re.escape(prefix)}-(\d{{4}})-(\d{{6}})", (code or "").strip().upper())
    if not match or int(match.group(2)) == 0 or int(match.group(1)) < 1000:
        return None
    return int(match.group(1)), int(match.group(2))


def codes_exhausted(prefix: str, year: int) -> Conflict:
    return Conflict(
        f"every {prefix} code of {year} is taken",
        {"reason": "codes_exhausted", "prefix": prefix, "year": year},
    )
