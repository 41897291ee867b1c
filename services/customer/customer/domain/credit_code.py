"""Unified social credit code (统一社会信用代码), GB 32100-2015.

Eighteen characters: registration authority (1), organisation type (1), administrative division
code (6 digits), organisation code (9) and a check character. Characters come from a 31-symbol
alphabet without I, O, S, V and Z; the check character makes the weighted sum divisible by 31,
the weights being the powers of 3 modulo 31.
"""

from __future__ import annotations

import unicodedata

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
LENGTH = 18

_VALUES = {ch: i for i, ch in enumerate(ALPHABET)}


def normalize_credit_code(value: str) -> str:
    """Upper case, full-width folded, spaces and dashes removed. Does not validate."""
    text = unicodedata.normalize("NFKC", value or "").upper()
    return "".join(ch for ch in text if not ch.isspace() and ch != "-")


def check_character(first17: str) -> str:
    """The check character for the first 17 characters of a code."""
    if len(first17) != LENGTH - 1:
        raise ValueError("need exactly 17 characters to compute the check character")
    try:
        total = sum(_VALUES[ch] * w for ch, w in zip(first17, WEIGHTS, strict=True))
    except KeyError as exc:
        raise ValueError(f"character {exc.args[0]!r} is not allowed in a credit code") from exc
    return ALPHABET[(31 - total % 31) % 31]


def credit_code_problem(value: str) -> str | None:
    """Why ``value`` (already normalized) is not a valid code, or None when it is."""
    if len(value) != LENGTH:
        return f"must be {LENGTH} characters, got {len(value)}"
    bad = sorted({ch for ch in value if ch not in _VALUES})
    if bad:
        return "contains characters not allowed in a credit code: " + "".join(bad)
    if not value[2:8].isdigit():
        return "characters 3 to 8 must be the digits of an administrative division code"
    expected = check_character(value[:17])
    if value[17] != expected:
        return f"check character is {value[17]}, expected {expected}"
    return None


def is_valid_credit_code(value: str) -> bool:
    return credit_code_problem(normalize_credit_code(value)) is None


def validate_credit_code(value: str) -> str:
    """The normalized code, or ``ValueError`` saying what is wrong with it."""
    code = normalize_credit_code(value)
    problem = credit_code_problem(code)
    if problem:
        raise ValueError(f"not a valid unified social credit code: {problem}")
    return code


def make_credit_code(first17: str) -> str:
    """Complete 17 characters with their check character (used for demo and test data)."""
    body = normalize_credit_code(first17)
    return body + check_character(body)
