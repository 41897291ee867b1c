"""Routes of orders."""

from __future__ import annotations

from gateway.table import Row

ROWS: tuple[Row, ...] = ()
