"""The catalog of function permissions (``resource:action``) that roles hand out.

Services check these codes on the principal; org owns the list so an administrator picks from
what exists and a typo never becomes a permission nobody checks.
"""

from __future__ import annotations

from collections.abc import Iterable

ORG_ADMIN = "org:admin"
SYSTEM_ADMIN = "system:admin"

CATALOG: dict[str, str] = {
    "customer:read": "See customers in one's data scope: lists, search, counts, summaries, "
    "history, contacts, relationships and care records",
    "customer:write": "Create and change customers, contacts, relationships and care records "
    "in one's data scope",
    "customer:import": "Import customers from CSV (only into one's data scope)",
    "customer:export": "Export the customers of one's data scope as CSV",
    "customer:merge": "Merge two customers of one's data scope",
    "customer:transfer": "Transfer a customer out of one's own scope: give it an owner, "
    "department or region one would no longer see it under (recorded in its history)",
    "customer:care-on-behalf": "Record customer care done by another user",
    ORG_ADMIN: "Administer departments, regions, people, users, roles and data grants",
    SYSTEM_ADMIN: "Operate the suite: dead letters and other operator tools",
}


def unknown_permissions(codes: Iterable[str]) -> list[str]:
    return sorted({code for code in codes if code not in CATALOG})


def catalog() -> list[dict[str, str]]:
    return [{"code": code, "description": text} for code, text in CATALOG.items()]
