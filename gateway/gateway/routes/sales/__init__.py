"""The sales service's HTTP API: opportunities, sales processes, competitors, activities,
expenses, targets and the forecast."""

from __future__ import annotations

from gateway.routes.sales import (
    activities,
    catalog,
    erp,
    opportunities,
    orders,
    quotes,
    receivables,
)
from gateway.table import RouteTable

TABLE = RouteTable(
    service="sales",
    tags=("sales",),
    rows=(
        *opportunities.ROWS,
        *activities.ROWS,
        *catalog.ROWS,
        *quotes.ROWS,
        *orders.ROWS,
        *receivables.ROWS,
        *erp.ROWS,
    ),
)
