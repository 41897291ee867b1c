"""Quotations (报价单): versions, lines and approvals."""

from __future__ import annotations
