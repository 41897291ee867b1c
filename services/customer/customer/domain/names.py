"""Company names reduced to what tells two companies apart, and how alike two names are."""

from __future__ import annotations

import re
import unicodedata
from difflib import SequenceMatcher

LEGAL_FORMS = (
    "股份有限公司",
    "有限责任公司",
    "有限公司",
    "股份公司",
    "集团公司",
    "总公司",
    "公司",
    "集团",
    "厂",
    "商行",
    "经营部",
    "co.,ltd",
    "co.ltd",
    "co ltd",
    "ltd",
    "inc",
    "corp",
)
GENERIC_WORDS = (
    "科技",
    "实业",
    "贸易",
    "商贸",
    "工贸",
    "制造",
    "销售",
    "发展",
)
_MARKERS = re.compile(r"[(（]\s*(中国|china)\s*[)）]", re.I)
_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)


def _strip_suffixes(text: str, suffixes: tuple[str, ...]) -> str:
    changed = True
    while changed:
        changed = False
        for suffix in suffixes:
            if text.endswith(suffix) and len(text) > len(suffix):
                text = text[: -len(suffix)]
                changed = True
    return text


def normalize_company_name(name: str) -> str:
    """``上海华东机电设备有限公司`` and ``上海华东机电设备(中国)股份有限公司`` both give
    ``上海华东机电设备``: width folded, case folded, the ``(中国)`` marker, legal forms, common
    trailing business words and punctuation removed."""
    text = unicodedata.normalize("NFKC", name or "").casefold()
    text = _MARKERS.sub("", text)
    text = _PUNCT.sub("", text)
    stripped = _strip_suffixes(text, tuple(_PUNCT.sub("", s) for s in LEGAL_FORMS))
    stripped = _strip_suffixes(stripped, GENERIC_WORDS)
    return stripped or text


def name_similarity(a: str, b: str) -> float:
    """Ratio in 0..1 of the normalized names (1.0 = the same company name)."""
    key_a, key_b = normalize_company_name(a), normalize_company_name(b)
    if not key_a or not key_b:
        return 0.0
    if key_a == key_b:
        return 1.0
    return SequenceMatcher(None, key_a, key_b, autojunk=False).ratio()


def bigrams(key: str) -> list[str]:
    """The distinct two-character pieces of a normalized name, in order."""
    seen: dict[str, None] = {}
    for i in range(len(key) - 1):
        seen.setdefault(key[i : i + 2], None)
    return list(seen) or ([key] if key else [])


def length_bounds(length: int, threshold: float) -> tuple[int, int]:
    """Shortest and longest name key that can still reach ``threshold`` against one of
    ``length`` characters (a ratio is 2·matches / total length, matches ≤ the shorter)."""
    low = int(length * threshold / (2 - threshold))
    high = int(length * (2 - threshold) / threshold) + 1
    return max(low, 1), high
