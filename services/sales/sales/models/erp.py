"""ERP events kept for later: those whose customer matches no CRM customer yet."""

from __future__ import annotations
