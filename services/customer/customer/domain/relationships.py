"""Relationships between customers (相关影响).

A relationship is read "<related customer> is <kind> of <customer>": on customer A's page,
``parent → 华东集团`` says 华东集团 is A's parent company. It is stored from A to the related
customer; seen from the related customer it reads with the inverse kind.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from crm_common.errors import Conflict, ValidationFailed


class Kind(StrEnum):
    PARENT = "parent"
    SUBSIDIARY = "subsidiary"
    PARTNER = "partner"
    INFLUENCES = "influences"


INVERSE = {
    "parent": "subsidiary",
    "subsidiary": "parent",
    "partner": "partner",
    "influences": "influenced_by",
}
LABELS = {"parent": "母公司", "subsidiary": "子公司", "partner": "合作伙伴", "influences": "影响"}

HIERARCHY = frozenset({Kind.PARENT, Kind.SUBSIDIARY})


@dataclass(frozen=True)
class Link:
    id: Hashable
    from_id: Hashable
    to_id: Hashable
    kind: str


def canonical_key(from_id: Hashable, to_id: Hashable, kind: str) -> tuple[Hashable, ...]:
    """Two links with the same key state the same fact (or contradictory facts about a pair's
    hierarchy): ``B parent of A`` equals ``A subsidiary of B`` and contradicts ``A parent of B``."""
    k = Kind(kind)
    pair = tuple(sorted((str(from_id), str(to_id))))
    if k in HIERARCHY:
        return ("hierarchy", *pair)
    if k is Kind.PARTNER:
        return ("partner", *pair)
    return ("influences", str(to_id), str(from_id))


def check_new_link(from_id: Hashable, to_id: Hashable, kind: str, existing: Iterable[Link]) -> None:
    """Refuse a self-link and a link that repeats or contradicts one the pair already has."""
    if str(from_id) == str(to_id):
        raise ValidationFailed.on("related_customer_id", "a customer cannot be related to itself")
    key = canonical_key(from_id, to_id, kind)
    for link in existing:
        if canonical_key(link.from_id, link.to_id, link.kind) != key:
            continue
        contradicts = Kind(kind) in HIERARCHY and _parent_child(
            link.from_id, link.to_id, link.kind
        ) != _parent_child(from_id, to_id, kind)
        raise Conflict(
            "these customers already have a parent/subsidiary relationship the other way"
            if contradicts
            else "these customers already have this relationship",
            {"reason": "duplicate_relationship", "relationship_id": str(link.id)},
        )


def _parent_child(from_id: Hashable, to_id: Hashable, kind: str) -> tuple[str, str]:
    if Kind(kind) is Kind.PARENT:
        return str(to_id), str(from_id)
    return str(from_id), str(to_id)


@dataclass(frozen=True)
class Repoint:
    id: Hashable
    from_id: Hashable
    to_id: Hashable


@dataclass(frozen=True)
class Drop:
    id: Hashable
    reason: str


def repoint_for_merge(
    links: Iterable[Link], survivor_id: Hashable, merged_id: Hashable
) -> list[Repoint | Drop]:
    """What to do with each link of the merged customer: point it at the survivor, or drop it
    when it would link the survivor to itself or repeat one the survivor already has."""
    survivor, merged = str(survivor_id), str(merged_id)
    links = list(links)
    keys = {
        canonical_key(link.from_id, link.to_id, link.kind)
        for link in links
        if merged not in (str(link.from_id), str(link.to_id))
    }
    actions: list[Repoint | Drop] = []
    for link in sorted(links, key=lambda lk: str(lk.id)):
        ends = (str(link.from_id), str(link.to_id))
        if merged not in ends:
            continue
        new_from = survivor if ends[0] == merged else ends[0]
        new_to = survivor if ends[1] == merged else ends[1]
        if new_from == new_to:
            actions.append(Drop(link.id, "self_link"))
            continue
        key = canonical_key(new_from, new_to, link.kind)
        if key in keys:
            actions.append(Drop(link.id, "duplicate"))
            continue
        keys.add(key)
        actions.append(Repoint(link.id, new_from, new_to))
    return actions


def seen_from(from_id: Hashable, kind: str, perspective: Hashable) -> tuple[str, str]:
    """The kind and direction (``outgoing`` or ``incoming``) of a relationship stored from
    ``from_id`` with ``kind``, as customer ``perspective`` reads it."""
    if from_id == perspective:
        return kind, "outgoing"
    return INVERSE[kind], "incoming"
