"""Receivables (应收): invoices and payments from the ERP, their allocations, and customers'
credit limits."""

from __future__ import annotations
