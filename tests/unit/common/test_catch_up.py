"""Reading the snapshots of services that a stack starts at the same time as the reader."""

from __future__ import annotations

import contextlib

from nameko.exceptions import UnknownService

from crm_common import catch_up
from crm_common.catch_up import CatchUpState, read_pending_snapshots


class Snapshots:
    """The catch-up side: one snapshot of ``org``, read once ``org`` answers."""

    def __init__(self) -> None:
        self.finished = False

    def pending_services(self) -> list[str]:
        return [] if self.finished else ["org"]

    def pending(self) -> list[str]:
        return [] if self.finished else ["org.people"]

    def read(self, service: str, proxy: object) -> dict[str, int]:
        proxy.structure_snapshot()  # type: ignore[attr-defined]
        self.finished = True
        return {"org.people": 18}


class Org:
    """An RPC proxy of a service that starts consuming after ``absent_calls`` calls."""

    def __init__(self, absent_calls: int) -> None:
        self.calls = 0
        self.absent_calls = absent_calls

    def structure_snapshot(self) -> None:
        self.calls += 1
        if self.calls <= self.absent_calls:
            raise UnknownService("org")


def state() -> CatchUpState:
    found = CatchUpState()
    found.setup()
    return found


def test_a_service_that_starts_a_moment_later_is_read_in_the_same_call():
    snapshots, org, read = Snapshots(), Org(absent_calls=2), state()
    read_pending_snapshots(snapshots, read, lambda service: contextlib.nullcontext(org))
    assert (org.calls, read.finished) == (3, True)


def test_a_service_still_absent_is_left_to_the_next_call(monkeypatch):
    monkeypatch.setattr(catch_up, "STARTING_WAITS", (0.01, 0.01))
    snapshots, org, read = Snapshots(), Org(absent_calls=10), state()
    read_pending_snapshots(snapshots, read, lambda service: contextlib.nullcontext(org))
    assert (org.calls, read.finished) == (3, False)
    org.absent_calls = 0
    read_pending_snapshots(snapshots, read, lambda service: contextlib.nullcontext(org))
    assert (org.calls, read.finished) == (4, True)
