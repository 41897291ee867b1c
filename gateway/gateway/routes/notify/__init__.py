"""The notify service's HTTP API: alert rules, the inbox, notification preferences and
deliveries."""

from __future__ import annotations

from gateway.routes.notify import deliveries, rules
from gateway.table import RouteTable

TABLE = RouteTable(
    service="notify",
    tags=("alerts",),
    rows=(*rules.ROWS, *deliveries.ROWS),
)
