"""Org's departments and regions as the customer service's copy holds them, for tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from customer.application.org_units import OrgUnits
from customer.domain.org_units import DEPARTMENT, REGION
from demo.org import DEPARTMENTS as DEMO_DEPARTMENTS
from demo.org import REGIONS as DEMO_REGIONS

TEST_DEPARTMENTS = {
    **{row[0]: row[4] for row in DEMO_DEPARTMENTS},
    "d1": None,
    "d2": None,
}
"""Department id → parent id: the demo org chart and the two the tests make up."""


def demo_region_paths() -> list[str]:
    names = {row[0]: row[2] for row in DEMO_REGIONS}
    parents = {row[0]: row[3] for row in DEMO_REGIONS}

    def path(region_id: str) -> str:
        parent = parents[region_id]
        return names[region_id] if parent is None else f"{path(parent)}/{names[region_id]}"

    return [path(row[0]) for row in DEMO_REGIONS]


TEST_REGIONS = [*demo_region_paths(), "华东/江", "华东/江苏/苏州"]


def seed_org_units(
    session,
    departments: Mapping[str, str | None] = TEST_DEPARTMENTS,
    regions: Iterable[str] = TEST_REGIONS,
    disabled: Iterable[str] = (),
) -> None:
    """Store these departments (id → parent id) and region paths as org announced them."""
    units = OrgUnits(session)
    off = set(disabled)
    for department_id, parent_id in departments.items():
        units.keep(
            DEPARTMENT,
            {
                "id": department_id,
                "code": department_id,
                "name": department_id,
                "parent_id": parent_id,
                "path": department_id,
                "disabled": department_id in off,
                "version": 1,
            },
        )
    for path in regions:
        parent, _, name = path.rpartition("/")
        units.keep(
            REGION,
            {
                "id": f"rg:{path}",
                "code": path,
                "name": name,
                "parent_id": f"rg:{parent}" if parent else None,
                "path": path,
                "disabled": path in off,
                "version": 1,
            },
        )
