"""The garbage collector of a service process, tuned once its container has started.

Each request leaves objects in reference cycles that only the cyclic collector frees (Nameko's
worker context and the service instance refer to each other through its dependencies;
werkzeug's routing and eventlet's request handling add a few more). With Python's defaults the
collector runs every 700 allocations and, every hundred runs or so, walks every object the
process holds: modules, SQLAlchemy's mappers, the container and its extensions. Measured on
the gateway under load, that was about 12 % of its CPU. So once the container has started,
:class:`CollectorTuning`:

* freezes the objects alive at that moment (``gc.freeze``): they live as long as the process,
  and the collector no longer walks them. They are unfrozen when the container stops, so in a
  process that starts and stops many containers (the tests) nothing stays out of reach;
* runs the youngest generation's collection after ``YOUNG_THRESHOLD`` allocations.
"""

from __future__ import annotations

import gc
from typing import Any

from nameko.extensions import DependencyProvider

YOUNG_THRESHOLD = 10_000
"""Allocations (net of deallocations) between two collections of the youngest generation."""


class CollectorTuning(DependencyProvider):
    """Freezes what the started container holds and collects young objects less often."""

    def start(self) -> None:
        _, middle, oldest = gc.get_threshold()
        gc.set_threshold(YOUNG_THRESHOLD, middle, oldest)
        gc.freeze()

    def stop(self) -> None:
        gc.unfreeze()

    def kill(self) -> None:
        gc.unfreeze()

    def get_dependency(self, worker_ctx: Any) -> None:
        return None
