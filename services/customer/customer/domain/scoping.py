"""Where a write may put a customer: inside the writer's data scope, or refused field by field.

Reading is scoped in SQL (``customer.repository``); this module checks the values a create,
update, import or merge is about to give a customer, before they are saved.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from crm_common.context import Principal
from crm_common.errors import ValidationFailed
from crm_common.scope import Grant, ScopeValues, in_scope

SCOPE_FIELDS = ("owner_id", "department_id", "region", "category")
OUTSIDE = "is outside your data scope"


def scope_values(values: Mapping[str, Any]) -> ScopeValues:
    return ScopeValues(**{name: values.get(name) for name in SCOPE_FIELDS})


def _by_field(grant: Grant) -> dict[str, Grant]:
    """``grant`` split into one single-dimension grant per scope field."""
    return {
        "owner_id": Grant(owner_self=grant.owner_self),
        "department_id": Grant(departments=grant.departments),
        "region": Grant(regions=grant.regions),
        "category": Grant(categories=grant.categories),
    }


def blamed_fields(principal: Principal, record: ScopeValues, written: Iterable[str]) -> list[str]:
    """The written fields that keep ``record`` out of scope.

    Of the grants the write could have met by changing only what it wrote, those failing on the
    fewest fields name them; when no grant is within reach, every written scope field is."""
    written = set(written) & set(SCOPE_FIELDS)
    reachable: list[set[str]] = []
    for grant in principal.grants:
        failing = {
            name
            for name, part in _by_field(grant).items()
            if not part.allows(record, principal.user_id)
        }
        if failing and failing <= written:
            reachable.append(failing)
    if reachable:
        fewest = min(len(failing) for failing in reachable)
        blamed = set().union(*(f for f in reachable if len(f) == fewest))
    else:
        blamed = written
    return [name for name in SCOPE_FIELDS if name in blamed]


def check_in_scope(principal: Principal, record: ScopeValues, written: Iterable[str]) -> None:
    """``ValidationFailed`` on the offending fields unless ``principal`` may hold ``record``."""
    if in_scope(principal, record):
        return
    fields = blamed_fields(principal, record, written) or list(SCOPE_FIELDS)
    raise ValidationFailed(
        "the customer would be outside your data scope",
        {"errors": {name: [OUTSIDE] for name in fields}},
    )
