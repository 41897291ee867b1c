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
    "opportunity:read": "See the opportunities of one's data scope: lists, stage history, "
    "history, competitors and loss reasons",
    "opportunity:write": "Create opportunities for customers of one's data scope, edit them, "
    "move them through their stages and close them as won, lost or abandoned",
    "opportunity:reopen": "Open a won, lost or abandoned opportunity of one's data scope again",
    "activity:read": "See the activities of one's data scope: lists, calendars, overdue ones",
    "activity:write": "Plan, complete, reschedule and cancel activities in one's data scope",
    "expense:read": "See the expenses of one's data scope and their totals",
    "expense:submit": "Submit sales expenses",
    "expense:approve": "Approve or reject the expenses waiting for one's decision as the "
    "manager their approval chain names",
    "expense:pay": "Mark approved expenses of one's data scope paid",
    "forecast:read": "See the forecast of one's data scope: weighted pipeline, attainment "
    "against targets, funnel, days per stage, win rates",
    "receivable:read": "See the invoices and payments of one's data scope from the ERP: "
    "outstanding amounts, aging, overdue lists, collections against plan, credit limits",
    "order:read": "See the sales orders of one's data scope, their lines, shipments and history",
    "order:write": "Enter sales orders for customers of one's data scope, change drafts, confirm "
    "them (to the ERP through the credit check) and cancel them",
    "order:approve": "Approve, or send back, the orders of one's data scope waiting because they "
    "exceed the customer's credit limit",
    "contract:read": "See the contracts of one's data scope, their payment milestones and those "
    "expiring",
    "contract:write": "Draft contracts for customers of one's data scope, change drafts, sign and "
    "terminate them",
    "sales:admin": "Administer sales processes, competitors, loss reasons, expense categories "
    "and sales targets",
    "alerts:admin": "Administer alert rules (消息预警): create, change, enable and disable them "
    "and read their revisions",
    ORG_ADMIN: "Administer departments, regions, people, users, roles and data grants",
    SYSTEM_ADMIN: "Operate the suite: dead letters and other operator tools",
}


def unknown_permissions(codes: Iterable[str]) -> list[str]:
    return sorted({code for code in codes if code not in CATALOG})


def catalog() -> list[dict[str, str]]:
    return [{"code": code, "description": text} for code, text in CATALOG.items()]
