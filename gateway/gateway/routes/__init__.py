"""The route tables of the backend services: one module per service, each with a ``TABLE``.

A new service's HTTP API is a new module here; the service registry (``services.toml``) names
it, and a test checks that the two agree.
"""

from __future__ import annotations

import importlib
import pkgutil

from gateway.table import RouteTable


def table_modules() -> tuple[str, ...]:
    """The names of the route table modules, e.g. ``gateway.routes.customer``."""
    return tuple(
        f"{__name__}.{module.name}"
        for module in sorted(pkgutil.iter_modules(__path__), key=lambda module: module.name)
    )


def tables() -> tuple[RouteTable, ...]:
    found: list[RouteTable] = []
    for name in table_modules():
        table = importlib.import_module(name).TABLE
        if not isinstance(table, RouteTable):
            raise TypeError(f"{name}.TABLE is not a RouteTable")
        found.append(table)
    return tuple(found)
