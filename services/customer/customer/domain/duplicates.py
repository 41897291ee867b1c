"""Which existing customers a new one probably duplicates, and why."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from customer.domain.credit_code import normalize_credit_code
from customer.domain.names import name_similarity
from customer.domain.phones import phone_key

SIMILAR_NAME_THRESHOLD = 0.88
"""Names whose normalized forms are at least this alike count as "very similar"."""

SAME_CREDIT_CODE = "same_credit_code"
SAME_NAME = "same_name"
SIMILAR_NAME = "similar_name"
SAME_PHONE = "same_phone"

WEIGHTS = {SAME_CREDIT_CODE: 1.0, SAME_NAME: 0.95, SAME_PHONE: 0.6}


@dataclass(frozen=True)
class Probe:
    """The customer about to be created (or imported)."""

    name: str
    credit_code: str | None = None
    phone: str | None = None


@dataclass
class DuplicateCandidate:
    id: str
    code: str
    name: str
    score: float
    reasons: list[str] = field(default_factory=list)
    name_similarity: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "code": self.code,
            "name": self.name,
            "score": self.score,
            "reasons": list(self.reasons),
        }


def score_candidate(
    probe: Probe, existing: Any, threshold: float = SIMILAR_NAME_THRESHOLD
) -> DuplicateCandidate | None:
    """Score one existing customer (anything with id, code, name, credit_code and phone)."""
    reasons: list[str] = []
    parts: list[float] = []
    probe_code = normalize_credit_code(probe.credit_code) if probe.credit_code else ""
    other_code = normalize_credit_code(existing.credit_code) if existing.credit_code else ""
    if probe_code and probe_code == other_code:
        reasons.append(SAME_CREDIT_CODE)
        parts.append(WEIGHTS[SAME_CREDIT_CODE])
    similarity = name_similarity(probe.name, existing.name)
    if similarity >= 1.0:
        reasons.append(SAME_NAME)
        parts.append(WEIGHTS[SAME_NAME])
    elif similarity >= threshold:
        reasons.append(SIMILAR_NAME)
        parts.append(similarity * WEIGHTS[SAME_NAME])
    probe_phone, other_phone = phone_key(probe.phone), phone_key(existing.phone)
    if probe_phone and probe_phone == other_phone:
        reasons.append(SAME_PHONE)
        parts.append(WEIGHTS[SAME_PHONE])
    if not reasons:
        return None
    remainder = 1.0
    for part in parts:
        remainder *= 1.0 - part
    return DuplicateCandidate(
        id=str(existing.id),
        code=existing.code,
        name=existing.name,
        score=round(1.0 - remainder, 3),
        reasons=reasons,
        name_similarity=round(similarity, 3),
    )


def find_duplicates(
    probe: Probe,
    existing: Iterable[Any],
    threshold: float = SIMILAR_NAME_THRESHOLD,
    limit: int = 10,
) -> list[DuplicateCandidate]:
    """Candidates with at least one reason, best first (score, then code)."""
    found = [c for c in (score_candidate(probe, e, threshold) for e in existing) if c]
    found.sort(key=lambda c: (-c.score, c.code))
    return found[:limit]
