"""The sales service's HTTP API: opportunities, sales processes, competitors, activities,
expenses, targets and the forecast. Its routes join this table as their use cases land."""

from __future__ import annotations

from gateway.table import RouteTable

TABLE = RouteTable(service="sales", tags=("sales",), rows=())
