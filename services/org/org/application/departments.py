"""Departments and regional offices (部门档案): a tree whose paths customers and grants use."""

from __future__ import annotations

from typing import Any

from org import repository
from org.application.admin import TreeAggregate
from org.domain.trees import DEPARTMENT_PATH_SEPARATOR, check_move
from org.models import DEPARTMENT_FIELDS, DataGrant, Department, Person
from org.schemas import DepartmentInputSchema, DepartmentSchema, TreeQuerySchema


class Departments(TreeAggregate):
    kind = "departments"
    entity_type = "department"
    fields = DEPARTMENT_FIELDS
    dumper = DepartmentSchema()
    input_schema = DepartmentInputSchema
    query_schema = TreeQuerySchema
    model = Department
    separator = DEPARTMENT_PATH_SEPARATOR

    def create(self, values: dict[str, Any]) -> Department:
        self.check_free(Department.code, values["code"], None, "code")
        self._check_references(values)
        watched = self.authz.effective(self._users_with_department_grants(values.get("parent_id")))
        department = Department(
            **values, path=self.path_of(values.get("parent_id"), values["name"])
        )
        self.add(department)
        self.settle(watched)
        self.announce(department)
        return department

    def update(self, department: Department, values: dict[str, Any]) -> None:
        if "code" in values:
            self.check_free(Department.code, values["code"], department.id, "code")
        self._check_references(values)
        moved = "parent_id" in values and values["parent_id"] != department.parent_id
        if moved:
            check_move(
                repository.tree(self.session, Department),
                department.id,
                values["parent_id"],
                "department",
                "sub-departments",
            )
        watched = self.authz.effective(self._users_with_department_grants(moved))
        values["path"] = self.path_of(
            values.get("parent_id", department.parent_id), values.get("name", department.name)
        )
        if not self.edit(department, values):
            return
        repathed = self.repath(department.id)
        self.settle(watched)
        self.department_changed([department, *(d for d in repathed if d is not department)])

    def announce(self, record: Department) -> None:
        self.department_changed([record])

    def _check_references(self, values: dict[str, Any]) -> None:
        self.check_exist(Department, [values.get("parent_id")], "parent_id")
        self.check_exist(Person, [values.get("manager_id")], "manager_id")

    def _users_with_department_grants(self, reshaped: Any) -> set[str]:
        """When the tree changes shape, whose compiled department grants may change."""
        if not reshaped:
            return set()
        return repository.users_with_grants_on(self.session, DataGrant.departments)
