"""Routes of receivables (应收): invoices and payments mirrored from the ERP, aging, overdue
lists, planned vs. actual collections, a customer's receivable summary and, for
administrators, the payment allocations waiting for their invoice."""

from __future__ import annotations

from gateway.table import Path, Query, Row

RECEIVABLES = ("receivables",)
SCOPED = (
    "Needs receivable:read; covers only the invoices and payments of customers within the "
    "caller's data scope. Amounts are decimal strings, summed per currency."
)

ROWS: tuple[Row, ...] = (
    Row(
        "GET",
        "/api/receivables/invoices",
        "list_invoices",
        (Query(),),
        summary="Invoices from the ERP: by customer, owner, department, status "
        "(open/paid/overdue), due period or invoice number",
        description=SCOPED,
        tags=RECEIVABLES,
        shape="page",
        response="Invoice",
        query="InvoiceQuery",
    ),
    Row(
        "GET",
        "/api/receivables/invoices/<invoice_no>",
        "get_invoice",
        (Path("invoice_no"),),
        summary="An invoice with what it still owes and the payments allocated to it",
        description=SCOPED,
        tags=RECEIVABLES,
        shape="object",
        response="Invoice",
    ),
    Row(
        "GET",
        "/api/receivables/payments",
        "list_payments",
        (Query(),),
        summary="Payments received (收款) with their allocations to invoices",
        description=SCOPED,
        tags=RECEIVABLES,
        shape="page",
        response="Payment",
        query="PaymentQuery",
    ),
    Row(
        "GET",
        "/api/receivables/aging",
        "receivable_aging",
        (Query(),),
        summary="Aging (账龄): what is owed not yet due, 1-30, 31-60, 61-90 and over 90 days "
        "past due, per customer, owner or department, with totals per currency",
        description=SCOPED,
        tags=RECEIVABLES,
        shape="object",
        response="Aging",
        query="AgingQuery",
    ),
    Row(
        "GET",
        "/api/receivables/overdue",
        "overdue_invoices",
        (Query(),),
        summary="Invoices at least `days` past due and still owing, the longest overdue first",
        description=SCOPED,
        tags=RECEIVABLES,
        shape="object",
        response="OverdueList",
        query="OverdueQuery",
    ),
    Row(
        "GET",
        "/api/receivables/collections",
        "receivable_collections",
        (Query(),),
        summary="Planned (contract payment milestones, 回款计划) against actual collections, "
        "month by month; with customer_id each milestone's state",
        description=SCOPED,
        tags=RECEIVABLES,
        shape="object",
        response="Collections",
        query="CollectionsQuery",
    ),
    Row(
        "GET",
        "/api/receivables/customers/<customer_id>",
        "customer_receivable",
        (Path("customer_id"),),
        summary="A customer's receivable: credit limit, outstanding, overdue and available "
        "credit per currency",
        description=SCOPED,
        tags=RECEIVABLES,
        shape="object",
        response="CustomerReceivables",
    ),
    Row(
        "GET",
        "/api/receivables/waiting-allocations",
        "waiting_allocations",
        (Query(),),
        summary="Payment allocations waiting for their invoice (unknown yet, or in another "
        "currency)",
        description="Needs sales:admin. They count nowhere until their invoice arrives.",
        tags=RECEIVABLES,
        shape="page",
        response="WaitingAllocation",
        query="WaitingAllocationQuery",
    ),
)
