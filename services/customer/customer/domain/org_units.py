"""Where a customer may be placed: departments and regions the org service knows, within the
caller's reach, and what counts as a transfer.

The customer service keeps a copy of org's departments and regions (``OrgUnit``). A write
naming a department or a region is checked against it:

* the department must be known and enabled; the region must be a known, enabled region, or a
  city right below one (org's region tree stops at provinces, customers carry
  ``大区/省/市``);
* the department must be one the caller may *assign*: those their grants name, or, for a
  grant that only keeps the caller's own customers (owner = self), their own department and
  its sub-departments; a grant tied to neither leaves departments open;
* a write that takes the customer out of the caller's data scope, or into a department they
  may not assign, is a *transfer*: it needs ``customer:transfer`` and is recorded as one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crm_common.errors import ValidationFailed
from crm_common.scope import ScopeValues, in_scope

if TYPE_CHECKING:
    from crm_common.context import Principal

DEPARTMENT = "department"
REGION = "region"
KINDS = (DEPARTMENT, REGION)
TRANSFER = "customer:transfer"
TRANSFERRED = "transferred"
"""The change a transfer is recorded as in the customer's history."""
REGION_SEPARATOR = "/"
NEEDS_TRANSFER = f"moving a customer there is a transfer, which needs {TRANSFER}"
OUTSIDE_DEPARTMENTS = "is outside the departments you may assign"


@dataclass(frozen=True)
class Unit:
    """A department or region as the customer service knows it."""

    id: str
    parent_id: str | None
    path: str
    disabled: bool = False


def is_newer(incoming_version: int, stored_version: int | None) -> bool:
    """Whether a department or region received in this version replaces the stored one."""
    return stored_version is None or incoming_version >= stored_version


def subtree(root: str, departments: Iterable[Unit]) -> set[str]:
    """``root`` and every department below it."""
    children: dict[str | None, list[str]] = {}
    for unit in departments:
        children.setdefault(unit.parent_id, []).append(unit.id)
    found, todo = set(), [root]
    while todo:
        current = todo.pop()
        if current not in found:
            found.add(current)
            todo.extend(children.get(current, ()))
    return found


def assignable_departments(principal: Principal, departments: Iterable[Unit]) -> set[str] | None:
    """The departments ``principal`` may put a customer in without a transfer; None for any."""
    allowed: set[str] = set()
    own = False
    for grant in principal.grants:
        if grant.departments is not None:
            allowed |= grant.departments
        elif grant.owner_self:
            own = True
        else:
            return None
    if own and principal.department_id:
        allowed |= subtree(principal.department_id, departments)
    return allowed


def region_errors(region: str, known: Mapping[str, Unit]) -> list[str]:
    """Why ``region`` (a normalized path) may not be written; empty when it may."""
    unit = known.get(region)
    parent = region.rpartition(REGION_SEPARATOR)[0]
    if unit is None and parent:
        unit = known.get(parent)
    if unit is None:
        return ["is not a region the org service knows (nor a city right below one)"]
    if unit.disabled:
        return [f"region {unit.path} is disabled"]
    return []


def department_errors(department_id: str, unit: Unit | None) -> list[str]:
    if unit is None:
        return ["is not a department the org service knows"]
    if unit.disabled:
        return [f"department {unit.path} is disabled"]
    return []


def check_known(errors: Mapping[str, list[str]]) -> None:
    """``ValidationFailed`` naming every field whose department or region is not usable."""
    found = {field: messages for field, messages in errors.items() if messages}
    if found:
        raise ValidationFailed(
            "the customer names a department or region that cannot be used", {"errors": found}
        )


def leaves_departments(
    department_id: str | None, changed: Iterable[str], assignable: set[str] | None
) -> bool:
    """Whether a write puts the customer in a department the caller may not assign."""
    return (
        "department_id" in set(changed)
        and department_id is not None
        and assignable is not None
        and department_id not in assignable
    )


def is_transfer(
    principal: Principal, after: ScopeValues, changed: Iterable[str], assignable: set[str] | None
) -> bool:
    """Whether the write takes the customer out of the caller's scope (see the module)."""
    return not in_scope(principal, after) or leaves_departments(
        after.department_id, changed, assignable
    )


def transfer_refused(errors: Mapping[str, list[str]]) -> ValidationFailed:
    """The refusal of a transfer to a caller without ``customer:transfer``."""
    return ValidationFailed(
        f"the customer would leave your scope: {NEEDS_TRANSFER}",
        {"errors": {field: list(messages) for field, messages in errors.items()}},
    )
