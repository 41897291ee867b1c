"""Telephone numbers: mainland-China mobiles (strict, ``crm_common.phones``) and landlines
(lenient)."""

from __future__ import annotations

import re

from crm_common.phones import clean, is_mobile, normalize_mobile

_PHONE_CHARS = re.compile(r"^[0-9+\-()\s.#转xX]+$|^[0-9+\-()\s.]+(ext\.?|转)\s*[0-9]+$", re.I)
_EXTENSION = re.compile(r"(转|ext\.?|#|[xX])\s*\d+$", re.I)


def normalize_phone(value: str) -> str:
    """A landline or mobile as people write it, tidied: a mobile becomes its 11 digits, a
    landline keeps its separators (``021-5888 1234 转 8001``). ``ValueError`` when it has
    letters or too few or too many digits."""
    text = clean(value)
    if is_mobile(text):
        return normalize_mobile(text)
    if not text or not _PHONE_CHARS.match(text):
        raise ValueError("a phone number may only hold digits, spaces, + - ( ) and an extension")
    digits = re.sub(r"\D", "", _EXTENSION.sub("", text))
    if not 7 <= len(digits) <= 16:
        raise ValueError("a phone number needs 7 to 16 digits")
    return re.sub(r"\s+", " ", text)


def phone_key(value: str | None) -> str | None:
    """Digits that identify a line, for matching: country code and extension dropped,
    ``+86 21 5888 1234`` and ``021-58881234`` give the same key."""
    if not value:
        return None
    text = clean(value)
    if is_mobile(text):
        return normalize_mobile(text)
    digits = re.sub(r"\D", "", _EXTENSION.sub("", text))
    if text.startswith("+86") or text.startswith("0086"):
        digits = digits[2:] if text.startswith("+") else digits[4:]
        if not digits.startswith("0"):
            digits = "0" + digits
    return digits or None
