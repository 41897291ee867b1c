"""Items and price lists mirrored from the ERP (存货, 价格政策)."""

from __future__ import annotations
