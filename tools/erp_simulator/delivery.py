"""The order messages go out in, and the ones that go out twice.

Out of order: an event that depends on another (``Event.follows``) is, with the given chance,
published just before the event it depends on: a shipment before its order, a payment before
its invoice, a corrected invoice before the first version. Duplicates: an event is, with the
given chance, published a second time, same id and body, a few messages later, as a
redelivery or an ERP re-sending it would.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field

from tools.erp_simulator.world import Event

DUPLICATE_DISTANCE = 50
"""At most this many messages between an event and its second copy."""


@dataclass
class Plan:
    messages: list[Event]
    out_of_order: list[tuple[str, str]] = field(default_factory=list)
    """(the event published first, the event it depends on, published after it)."""
    duplicates: list[str] = field(default_factory=list)


def plan(
    events: list[Event], rng: random.Random, duplicates: float = 0.0, out_of_order: float = 0.0
) -> Plan:
    by_id = {event.event_id: event for event in events}
    ahead: dict[str, list[Event]] = {}
    pairs: list[tuple[str, str]] = []
    for event in events:
        if event.follows in by_id and rng.random() < out_of_order:
            ahead.setdefault(event.follows, []).append(event)
            pairs.append((event.event_id, event.follows))
    moved = {first for first, _ in pairs}
    ordered: list[Event] = []

    def emit(event: Event) -> None:
        for dependent in ahead.get(event.event_id, ()):
            emit(dependent)
        ordered.append(event)

    for event in events:
        if event.event_id not in moved:
            emit(event)

    copies: dict[int, list[Event]] = defaultdict(list)
    copied: list[str] = []
    for index, event in enumerate(ordered):
        if rng.random() < duplicates:
            after = min(index + rng.randint(1, DUPLICATE_DISTANCE), len(ordered) - 1)
            copies[after].append(event)
            copied.append(event.event_id)
    messages: list[Event] = []
    for index, event in enumerate(ordered):
        messages.append(event)
        messages.extend(copies.get(index, ()))
    return Plan(messages, pairs, copied)
