"""Deliveries by email and SMS: one row per message, its attempts and the provider receipts."""

from __future__ import annotations
