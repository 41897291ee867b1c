"""Mainland-China mobile numbers, as every context stores them: 11 digits.

Customers' contacts, personnel and the SMS alerts all hold mobiles; each accepts what people
type (``+86 138 1234 5678``, ``0086-13812345678``, full-width digits) and keeps one form.
"""

from __future__ import annotations

import re
import unicodedata

MOBILE = re.compile(r"1[3-9]\d{9}")
SEPARATORS = re.compile(r"[\s\-().]")


def clean(value: str) -> str:
    """Full-width characters made ordinary, surrounding space dropped."""
    return unicodedata.normalize("NFKC", value or "").strip()


def normalize_mobile(value: str) -> str:
    """The 11-digit form of a mainland mobile given as ``13812345678``, ``+86 138 1234 5678``,
    ``86-13812345678`` or ``0086 13812345678``; ``ValueError`` for anything else."""
    text = SEPARATORS.sub("", clean(value))
    if text.startswith("+86"):
        text = text[3:]
    elif text.startswith("0086"):
        text = text[4:]
    elif text.startswith("86") and len(text) == 13:
        text = text[2:]
    if not MOBILE.fullmatch(text):
        raise ValueError(
            "not a mainland-China mobile number (11 digits starting 13-19, +86 allowed)"
        )
    return text


def is_mobile(value: str) -> bool:
    try:
        normalize_mobile(value)
    except ValueError:
        return False
    return True
