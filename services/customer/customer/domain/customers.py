"""Rules of one customer record that every write applies: who may still edit it, what kind of
customer carries a credit code, and how a clash with customers already on file is told to a
caller who may not see them all."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from crm_common.errors import Conflict, ValidationFailed
from crm_common.history import FieldChange
from customer.domain.merge import OWNERSHIP_FIELDS
from customer.domain.status import Status

CREDIT_CODE_TAKEN_OUTSIDE = "already used by a customer outside your data scope"


class OnFile(Protocol):
    """What these rules read of a customer on file."""

    id: Any
    code: str
    name: str
    status: str
    merged_into_id: Any


def check_editable(customer: OnFile) -> None:
    """A merged customer is kept for its history only: nothing may change it or hang off it."""
    if customer.status == Status.MERGED.value:
        raise Conflict(
            f"customer {customer.code} was merged into another customer",
            {"reason": "customer_merged", "merged_into_id": str(customer.merged_into_id)},
        )


def check_credit_code_allowed(kind: str | None, credit_code: str | None) -> None:
    """An individual is no organisation: it has no unified social credit code."""
    if kind == "individual" and credit_code:
        raise ValidationFailed.on(
            "credit_code", "an individual customer has no unified social credit code"
        )


def with_owner_defaults(
    values: Mapping[str, Any], user_id: str, department_id: str | None
) -> dict[str, Any]:
    """A new customer's values; unless given, the creator owns it in the creator's department."""
    return {"owner_id": user_id, "department_id": department_id, **values}


def moves_owner(changes: Iterable[FieldChange]) -> bool:
    """Whether the customer changes hands (``customer_owner_changed``)."""
    return any(change.field in OWNERSHIP_FIELDS for change in changes)


HIDDEN_CANDIDATE: dict[str, Any] = {"in_scope": False}
"""All a caller learns of duplicates outside their scope: that there is at least one."""


def candidate_view(candidate: Mapping[str, Any], in_scope: bool) -> dict[str, Any]:
    """A duplicate candidate as the caller may see it: outside their scope, only that it
    exists (no identity, score or reasons, which would tell how close a hidden record is)."""
    if in_scope:
        return {**candidate, "in_scope": True}
    return dict(HIDDEN_CANDIDATE)


def candidate_views(
    candidates: Iterable[Mapping[str, Any]], visible_ids: set[str]
) -> list[dict[str, Any]]:
    """The candidates the caller may see, then at most one ``HIDDEN_CANDIDATE`` standing for
    all the others (so neither their number nor their order tells anything)."""
    candidates = list(candidates)
    views = [candidate_view(c, True) for c in candidates if str(c["id"]) in visible_ids]
    if len(views) < len(candidates):
        views.append(dict(HIDDEN_CANDIDATE))
    return views


def duplicate_found(candidates: list[dict[str, Any]]) -> Conflict:
    return Conflict(
        "this customer looks like one that already exists; create it anyway with allow_duplicate",
        {"reason": "duplicate_customer", "candidates": candidates},
    )


def credit_code_taken(holder: OnFile) -> Conflict:
    """The credit code belongs to ``holder``, a customer the caller may see."""
    return Conflict(
        f"customer {holder.code} already has this unified social credit code",
        {
            "reason": "credit_code_taken",
            "errors": {"credit_code": [f"already used by {holder.code}"]},
            "candidates": [
                {
                    "id": str(holder.id),
                    "code": holder.code,
                    "name": holder.name,
                    "score": 1.0,
                    "reasons": ["same_credit_code"],
                    "in_scope": True,
                }
            ],
            "merged_into_id": str(holder.merged_into_id) if holder.merged_into_id else None,
        },
    )


def credit_code_taken_outside() -> Conflict:
    """The credit code belongs to a customer the caller may not see: no word about which."""
    return Conflict(
        "a customer outside your data scope already has this unified social credit code",
        {
            "reason": "credit_code_taken",
            "errors": {"credit_code": [CREDIT_CODE_TAKEN_OUTSIDE]},
            "candidates": [dict(HIDDEN_CANDIDATE)],
            "merged_into_id": None,
        },
    )


ERP_CODE_TAKEN_OUTSIDE = "already used by a customer outside your data scope"


def erp_code_taken(holder: OnFile) -> Conflict:
    """The ERP code belongs to ``holder``, a customer the caller may see."""
    return Conflict(
        f"customer {holder.code} already has this ERP code",
        {
            "reason": "erp_code_taken",
            "errors": {"erp_code": [f"already used by {holder.code}"]},
            "holder": {"id": str(holder.id), "code": holder.code, "name": holder.name},
        },
    )


def erp_code_taken_outside() -> Conflict:
    """The ERP code belongs to a customer the caller may not see: no word about which."""
    return Conflict(
        "a customer outside your data scope already has this ERP code",
        {"reason": "erp_code_taken", "errors": {"erp_code": [ERP_CODE_TAKEN_OUTSIDE]}},
    )
