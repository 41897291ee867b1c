"""Sales routes: quotations (报价单) — create, edit, submit for discount approval, approve or
send back, send, accept (optionally making the order) or decline, revise, read earlier
versions, print."""

from __future__ import annotations

from gateway.table import Body, Changes, Page, Path, Query, Row, Version

QUOTE = Path("quote_id")
QUOTES = ("quotes",)
SCOPED = (
    "Quotes are scoped like opportunities (404 outside the caller's data scope; the managers "
    "asked to approve one see it too). Reading needs opportunity:read, changing "
    "opportunity:write."
)
VERSIONED = "(optimistic locking: If-Match or body version)"
ACTION = "Send {} or the version you read; 409 when the quote's status does not allow it."

ROWS: tuple[Row, ...] = (
    Row(
        "GET",
        "/api/quotes",
        "list_quotes",
        (Query(),),
        summary="List quotes: by status, customer, opportunity, owner, q (code, title or "
        "customer name); awaiting_me=true (待我审批)",
        description=SCOPED,
        tags=QUOTES,
        shape="page",
        response="Quote",
        query="QuoteQuery",
    ),
    Row(
        "POST",
        "/api/quotes",
        "create_quote",
        (Body(),),
        summary="Make a draft quote for a customer or an opportunity; unit prices default to "
        "what pricing chooses for the customer's category",
        description=f"{SCOPED} An unknown item, a bad quantity, discount or tax rate is a 422 "
        "naming the line (lines.2.item_code).",
        tags=QUOTES,
        body="QuoteInput",
        response="Quote",
        status=201,
        location="/api/quotes/{id}",
    ),
    Row(
        "GET",
        "/api/quotes/<quote_id>",
        "get_quote",
        (QUOTE,),
        summary="Get a quote at its current version, with lines, totals and approvals",
        description=SCOPED,
        tags=QUOTES,
        response="Quote",
    ),
    Row(
        "PATCH",
        "/api/quotes/<quote_id>",
        "update_quote",
        (QUOTE, Changes()),
        {"expected_version": Version()},
        summary=f"Change a draft quote: lines (all of them), discount, validity, terms {VERSIONED}",
        description="Only a draft changes; revise a quote that was submitted or sent.",
        tags=QUOTES,
        body="QuoteEditInput",
        response="Quote",
        errors=(409,),
    ),
    Row(
        "POST",
        "/api/quotes/<quote_id>/submit",
        "submit_quote",
        (QUOTE, Body()),
        summary="Submit a draft: approved at once within the caller's discount authority, "
        "else waiting for the next manager up",
        description=f"{ACTION} 409 too when nobody above can approve.",
        tags=QUOTES,
        body="QuoteActionInput",
        response="Quote",
        errors=(409,),
    ),
    Row(
        "POST",
        "/api/quotes/<quote_id>/approve",
        "approve_quote",
        (QUOTE, Body()),
        summary="Approve the discount of a quote waiting for me; beyond my own authority it "
        "passes to the next manager up",
        description="403 when the quote waits for someone else.",
        tags=QUOTES,
        body="QuoteDecisionInput",
        response="Quote",
        errors=(409,),
    ),
    Row(
        "POST",
        "/api/quotes/<quote_id>/reject",
        "reject_quote",
        (QUOTE, Body()),
        summary="Send a quote waiting for me back to draft, with a comment",
        description="403 when the quote waits for someone else.",
        tags=QUOTES,
        body="QuoteDecisionInput",
        response="Quote",
        errors=(409,),
    ),
    Row(
        "POST",
        "/api/quotes/<quote_id>/send",
        "send_quote",
        (QUOTE, Body()),
        summary="Mark an approved quote sent to the customer",
        description=f"{ACTION} A quote past its validity must be revised first.",
        tags=QUOTES,
        body="QuoteActionInput",
        response="Quote",
        errors=(409,),
    ),
    Row(
        "POST",
        "/api/quotes/<quote_id>/accept",
        "accept_quote",
        (QUOTE, Body()),
        summary="The customer accepted: the opportunity moves to its next open stage, and "
        "with create_order the order is made from the quote",
        description=ACTION,
        tags=QUOTES,
        body="QuoteAcceptInput",
        shape="object",
        response="QuoteAcceptance",
        errors=(409,),
    ),
    Row(
        "POST",
        "/api/quotes/<quote_id>/decline",
        "decline_quote",
        (QUOTE, Body()),
        summary="The customer turned the quote down (status rejected), with the reason",
        description=ACTION,
        tags=QUOTES,
        body="QuoteDeclineInput",
        response="Quote",
        errors=(409,),
    ),
    Row(
        "POST",
        "/api/quotes/<quote_id>/revisions",
        "revise_quote",
        (QUOTE, Body()),
        summary="Revise a quote into a new draft version; the version it replaces stays readable",
        description=ACTION,
        tags=QUOTES,
        body="QuoteRevisionInput",
        response="Quote",
        status=201,
        location="/api/quotes/{id}",
        errors=(409,),
    ),
    Row(
        "GET",
        "/api/quotes/<quote_id>/versions/<version_no>",
        "quote_version",
        (QUOTE, Path("version_no")),
        summary="One version of a quote: the current one, or an earlier one as it was offered",
        description=SCOPED,
        tags=QUOTES,
        shape="object",
        response="QuoteVersion",
    ),
    Row(
        "GET",
        "/api/quotes/<quote_id>/print",
        "print_quote",
        (QUOTE,),
        summary="The quote as an HTML page to print or send: company header, lines, totals "
        "in figures and 人民币大写, validity and terms",
        description=SCOPED,
        tags=QUOTES,
        shape="html",
    ),
    Row(
        "GET",
        "/api/quotes/<quote_id>/pdf",
        "quote_pdf",
        (QUOTE,),
        summary="The quote as a PDF to send: the printed page's content, its Chinese text in "
        "the STSong-Light font PDF readers supply",
        description=SCOPED,
        tags=QUOTES,
        shape="pdf",
    ),
    Row(
        "GET",
        "/api/quotes/<quote_id>/history",
        "quote_history",
        (QUOTE,),
        {"cursor": Page("cursor"), "limit": Page("limit")},
        summary="Who changed, submitted, approved, sent or revised a quote, and when",
        tags=QUOTES,
        params=("cursor", "limit"),
        shape="page",
        response="HistoryEntry",
    ),
)
