"""Sales routes of the ERP integration an administrator uses: the ERP events whose customer
matched no CRM customer, and mapping their ERP customer to one (which applies them)."""

from __future__ import annotations

from gateway.table import Body, Path, Query, Row

ERP = ("ERP integration",)

ROWS: tuple[Row, ...] = (
    Row(
        "GET",
        "/api/erp/unmatched-events",
        "list_erp_unmatched_events",
        (Query(),),
        summary="ERP events waiting for their customer (sales:admin)",
        description="Events about a customer (orders entered in the ERP, invoices, payments, "
        "credit limits) whose crm_customer_id, credit code and ERP code matched no CRM "
        "customer when they arrived; oldest first. status=applied lists those applied since.",
        tags=ERP,
        shape="page",
        response="ErpUnmatchedEvent",
        query="ErpUnmatchedEventQuery",
    ),
    Row(
        "POST",
        "/api/erp/unmatched-events/<unmatched_id>/apply",
        "apply_erp_unmatched_event",
        (Path("unmatched_id"), Body()),
        summary="Map the event's ERP customer to a CRM customer and apply every event "
        "waiting for it (sales:admin)",
        description="The mapping is kept: later events of that ERP customer code match it. An "
        "event that fails to apply keeps waiting, with its error and one more attempt.",
        tags=ERP,
        shape="object",
        body="ErpCustomerMappingInput",
        response="ErpCustomerMapping",
        errors=(404, 422),
    ),
)
