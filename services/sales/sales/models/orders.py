"""Sales orders, their lines and shipments, and contracts (合同) with their payment milestones."""

from __future__ import annotations
