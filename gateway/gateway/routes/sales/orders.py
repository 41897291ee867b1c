"""Sales routes: sales orders (销售订单) and contracts (合同)."""

from __future__ import annotations

from gateway.table import Body, Changes, Page, Path, Query, Row, Version

ORDER = Path("order_id")
CONTRACT = Path("contract_id")
ORDERS = ("sales orders",)
CONTRACTS = ("contracts",)
VERSIONED = "(optimistic locking: If-Match or body version)"
CREDIT = (
    "The customer's receivables outstanding, its other open orders and this order (tax "
    "included) are checked against the credit limit the ERP set: within it the order is "
    "confirmed and order_confirmed goes to the ERP; beyond it (or without a limit, when so "
    "configured) it waits for a manager with order:approve (pending_approval). The first "
    "confirmed order of an opportunity wins it. A version in the body is checked if sent."
)


def order_rows() -> tuple[Row, ...]:
    return (
        Row(
            "GET",
            "/api/orders",
            "list_orders",
            (Query(),),
            summary="Search and list sales orders (without their lines)",
            tags=ORDERS,
            shape="page",
            response="Order",
            query="OrderQuery",
        ),
        Row(
            "POST",
            "/api/orders",
            "create_order",
            (Body(),),
            summary="Enter a draft order: customer, lines, discounts and tax; totals by the "
            "quote rules (rounded half up to the fen once per line)",
            tags=ORDERS,
            body="OrderInput",
            response="Order",
            status=201,
            location="/api/orders/{id}",
        ),
        Row(
            "POST",
            "/api/quotes/<quote_id>/order",
            "create_order_from_quote",
            (Path("quote_id"), Body()),
            summary="Make a draft order of an accepted quote, its lines and figures as quoted",
            tags=ORDERS,
            body="OrderFromQuoteInput",
            response="Order",
            status=201,
            location="/api/orders/{id}",
            errors=(409,),
        ),
        Row(
            "GET",
            "/api/orders/<order_id>",
            "get_order",
            (ORDER,),
            summary="Get an order with its lines",
            tags=ORDERS,
            response="Order",
        ),
        Row(
            "PATCH",
            "/api/orders/<order_id>",
            "update_order",
            (ORDER, Changes()),
            {"expected_version": Version()},
            summary=f"Change a draft order; lines given replace them all {VERSIONED}",
            tags=ORDERS,
            body="OrderEditInput",
            response="Order",
            errors=(409,),
        ),
        Row(
            "POST",
            "/api/orders/<order_id>/confirm",
            "confirm_order",
            (ORDER, Body()),
            summary="Confirm a draft order through the credit check",
            description=CREDIT,
            tags=ORDERS,
            response="Order",
            errors=(409,),
        ),
        Row(
            "POST",
            "/api/orders/<order_id>/approve",
            "approve_order",
            (ORDER, Body()),
            summary="Approve an order waiting over the credit limit: it is confirmed and sent "
            "to the ERP (order:approve; not one's own)",
            tags=ORDERS,
            body="OrderDecisionInput",
            response="Order",
            errors=(409,),
        ),
        Row(
            "POST",
            "/api/orders/<order_id>/reject",
            "reject_order",
            (ORDER, Body()),
            summary="Send an order waiting for approval back to its owner as a draft, with "
            "the reason (order:approve)",
            tags=ORDERS,
            body="OrderDecisionInput",
            response="Order",
            errors=(409,),
        ),
        Row(
            "POST",
            "/api/orders/<order_id>/cancel",
            "cancel_order",
            (ORDER, Body()),
            summary="Cancel an order the ERP never had; ask the ERP to cancel one it has "
            "(cancel_requested until its order_cancelled)",
            tags=ORDERS,
            body="OrderCancelInput",
            response="Order",
        ),
        Row(
            "POST",
            "/api/orders/<order_id>/rework",
            "rework_order",
            (ORDER, Body()),
            summary="Take an order the ERP rejected back to a draft, to change and confirm again",
            tags=ORDERS,
            response="Order",
            errors=(409,),
        ),
        Row(
            "GET",
            "/api/orders/<order_id>/shipments",
            "order_shipments",
            (ORDER,),
            summary="The shipments the ERP reported for an order, with serial numbers and "
            "the lines that do not fit the order",
            tags=ORDERS,
            shape="object",
            response="OrderShipmentList",
        ),
        Row(
            "GET",
            "/api/orders/<order_id>/history",
            "order_history",
            (ORDER,),
            {"cursor": Page("cursor"), "limit": Page("limit")},
            summary="Who changed what of an order, and when",
            tags=ORDERS,
            params=("cursor", "limit"),
            shape="page",
            response="HistoryEntry",
        ),
    )


def contract_rows() -> tuple[Row, ...]:
    return (
        Row(
            "GET",
            "/api/contracts",
            "list_contracts",
            (Query(),),
            summary="Search and list contracts (without their milestones)",
            tags=CONTRACTS,
            shape="page",
            response="Contract",
            query="ContractQuery",
        ),
        Row(
            "POST",
            "/api/contracts",
            "create_contract",
            (Body(),),
            summary="Draft a contract, directly, from a won opportunity, an accepted quote or "
            "for an order, with payment milestones adding up to its amount",
            tags=CONTRACTS,
            body="ContractInput",
            response="Contract",
            status=201,
            location="/api/contracts/{id}",
        ),
        Row(
            "GET",
            "/api/contracts/expiring",
            "expiring_contracts",
            (Query(),),
            summary="Signed and active contracts ending within days (30 unless given), the "
            "soonest first",
            tags=CONTRACTS,
            shape="page",
            response="Contract",
            query="ExpiringContractQuery",
        ),
        Row(
            "GET",
            "/api/contracts/<contract_id>",
            "get_contract",
            (CONTRACT,),
            summary="Get a contract with its payment milestones",
            tags=CONTRACTS,
            response="Contract",
        ),
        Row(
            "PATCH",
            "/api/contracts/<contract_id>",
            "update_contract",
            (CONTRACT, Changes()),
            {"expected_version": Version()},
            summary=f"Change a draft contract; milestones given replace them all {VERSIONED}",
            tags=CONTRACTS,
            body="ContractEditInput",
            response="Contract",
            errors=(409,),
        ),
        Row(
            "POST",
            "/api/contracts/<contract_id>/sign",
            "sign_contract",
            (CONTRACT, Body()),
            summary="Sign a draft contract: signed, or active once its start date has come",
            tags=CONTRACTS,
            body="ContractSignInput",
            response="Contract",
        ),
        Row(
            "POST",
            "/api/contracts/<contract_id>/terminate",
            "terminate_contract",
            (CONTRACT, Body()),
            summary="Terminate a signed or active contract, with the reason",
            tags=CONTRACTS,
            body="ContractTerminateInput",
            response="Contract",
        ),
        Row(
            "POST",
            "/api/contracts/<contract_id>/complete",
            "complete_contract",
            (CONTRACT,),
            summary="Mark an active contract fulfilled",
            tags=CONTRACTS,
            response="Contract",
        ),
        Row(
            "GET",
            "/api/contracts/<contract_id>/history",
            "contract_history",
            (CONTRACT,),
            {"cursor": Page("cursor"), "limit": Page("limit")},
            summary="Who changed what of a contract, and when",
            tags=CONTRACTS,
            params=("cursor", "limit"),
            shape="page",
            response="HistoryEntry",
        ),
    )


ROWS: tuple[Row, ...] = (*order_rows(), *contract_rows())
