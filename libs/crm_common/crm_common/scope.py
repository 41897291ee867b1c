"""Data scope by management dimensions (管理维度): which records a principal may see.

A *grant* constrains up to four dimensions of a record: its department, its region, its
customer category and its owner. The constraints of one grant are ANDed ("crossed"); the
grants of a principal are ORed. A dimension a grant leaves out is not restricted by it, so a
grant with no constraint at all covers everything, and a principal without grants sees nothing.

Grants travel in the principal already *compiled* by the org service: department constraints
list every department id they cover (sub-departments expanded), region constraints are paths
such as ``华东/江苏`` matched exactly or, with ``subtree``, together with everything below.

``scope_filter`` turns a principal into one SQL condition for a model's scope columns, so that
lists, searches, counts, exports and aggregates all filter in the database. Its values are bound
parameters named after their place in the grants, so the condition has one *shape* for every
principal whose grants constrain the same dimensions (``scope_shape``): a read path builds its
statement once per shape with ``scope_condition`` and runs it with ``scope_parameters``.
``in_scope`` evaluates the same rules on plain values, for checking where a write would put a
record; ``check_in_scope`` refuses such a write, naming the fields that keep the record out
(``blamed_fields``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    SQLColumnExpression,
    and_,
    bindparam,
    false,
    func,
    or_,
    true,
)

from crm_common.errors import ValidationFailed

if TYPE_CHECKING:
    from crm_common.context import Principal

OWNER_SELF = "self"
SCOPE_FIELDS = ("owner_id", "department_id", "region", "category")
"""The fields of a record that carry the four dimensions, as ``ScopeValues`` names them."""
OUTSIDE = "is outside your data scope"
GRANT_KEYS = frozenset({"departments", "regions", "categories", "owner"})
REGION_SEPARATOR = "/"


class MalformedGrant(ValueError):
    """A grant that does not follow the compiled form described in this module."""


@dataclass(frozen=True)
class RegionRule:
    """A region path matched exactly, or with ``subtree`` also every region below it."""

    path: str
    subtree: bool = True

    def matches(self, region: str | None) -> bool:
        if region is None:
            return False
        if region == self.path:
            return True
        return self.subtree and region.startswith(self.path + REGION_SEPARATOR)


@dataclass(frozen=True)
class Grant:
    """One crossed set of constraints; ``None`` leaves a dimension unrestricted."""

    departments: frozenset[str] | None = None
    regions: tuple[RegionRule, ...] | None = None
    categories: frozenset[str] | None = None
    owner_self: bool = False

    @property
    def unrestricted(self) -> bool:
        return (
            self.departments is None
            and self.regions is None
            and self.categories is None
            and not self.owner_self
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Grant:
        if not isinstance(data, Mapping):
            raise MalformedGrant("a grant must be an object")
        unknown = set(data) - GRANT_KEYS
        if unknown:
            raise MalformedGrant(f"unknown grant dimensions {sorted(unknown)}")
        owner = data.get("owner")
        if owner not in (None, OWNER_SELF):
            raise MalformedGrant("owner can only be 'self'")
        regions = data.get("regions")
        return cls(
            departments=_string_set(data.get("departments"), "departments"),
            regions=None if regions is None else tuple(_region_rule(r) for r in _list(regions)),
            categories=_string_set(data.get("categories"), "categories"),
            owner_self=owner == OWNER_SELF,
        )

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.departments is not None:
            data["departments"] = sorted(self.departments)
        if self.regions is not None:
            data["regions"] = [{"path": r.path, "subtree": r.subtree} for r in self.regions]
        if self.categories is not None:
            data["categories"] = sorted(self.categories)
        if self.owner_self:
            data["owner"] = OWNER_SELF
        return data

    def allows(self, record: ScopeValues, user_id: str) -> bool:
        if self.departments is not None and record.department_id not in self.departments:
            return False
        if self.regions is not None and not any(r.matches(record.region) for r in self.regions):
            return False
        if self.categories is not None and record.category not in self.categories:
            return False
        return not self.owner_self or record.owner_id == user_id


@dataclass(frozen=True)
class ScopeColumns:
    """The columns of a model that carry each dimension; a model may lack some.

    A grant that constrains a dimension the model does not carry covers none of its rows."""

    owner: SQLColumnExpression[Any] | None = None
    department: SQLColumnExpression[Any] | None = None
    region: SQLColumnExpression[Any] | None = None
    category: SQLColumnExpression[Any] | None = None


@dataclass(frozen=True)
class ScopeValues:
    """The dimension values of one record (or of what a write is about to make of it)."""

    owner_id: str | None = None
    department_id: str | None = None
    region: str | None = None
    category: str | None = None


@dataclass(frozen=True)
class GrantShape:
    """What a grant constrains, without the values: the dimensions, and for regions the
    subtree flag of each rule."""

    departments: bool
    regions: tuple[bool, ...] | None
    categories: bool
    owner_self: bool


ScopeShape = tuple[GrantShape, ...] | None
"""The shape of a principal's grants; ``None`` for an unrestricted principal."""


def scope_filter(principal: Principal, columns: ScopeColumns) -> ColumnElement[bool]:
    """One SQL condition selecting exactly the rows ``principal``'s grants cover."""
    return _condition(scope_shape(principal), columns, scope_parameters(principal))


def scope_shape(principal: Principal) -> ScopeShape:
    """The shape of ``principal``'s scope condition: principals of one shape share a statement."""
    if any(grant.unrestricted for grant in principal.grants):
        return None
    return tuple(
        GrantShape(
            departments=grant.departments is not None,
            regions=None if grant.regions is None else tuple(r.subtree for r in grant.regions),
            categories=grant.categories is not None,
            owner_self=grant.owner_self,
        )
        for grant in principal.grants
    )


def scope_condition(shape: ScopeShape, columns: ScopeColumns) -> ColumnElement[bool]:
    """The scope condition of every principal of ``shape``, its values left as parameters for
    ``scope_parameters`` to give at execution."""
    return _condition(shape, columns, None)


def scope_parameters(principal: Principal) -> dict[str, Any]:
    """The values of ``principal``'s scope condition, by parameter name."""
    if any(grant.unrestricted for grant in principal.grants):
        return {}
    values: dict[str, Any] = {USER_PARAMETER: principal.user_id}
    for index, grant in enumerate(principal.grants):
        name = _Names(index)
        if grant.departments is not None:
            values[name.departments] = sorted(grant.departments)
        for position, rule in enumerate(grant.regions or ()):
            values[name.region(position)] = rule.path
            prefix = rule.path + REGION_SEPARATOR
            values[name.region_prefix(position)] = prefix
            values[name.region_length(position)] = len(prefix)
        if grant.categories is not None:
            values[name.categories] = sorted(grant.categories)
    return values


USER_PARAMETER = "scope_user"


@dataclass(frozen=True)
class _Names:
    """The parameter names of grant number ``index``."""

    index: int

    @property
    def departments(self) -> str:
        return f"scope{self.index}_departments"

    @property
    def categories(self) -> str:
        return f"scope{self.index}_categories"

    def region(self, position: int) -> str:
        return f"scope{self.index}_region{position}"

    def region_prefix(self, position: int) -> str:
        return f"scope{self.index}_region{position}_prefix"

    def region_length(self, position: int) -> str:
        return f"scope{self.index}_region{position}_length"


def _condition(
    shape: ScopeShape, columns: ScopeColumns, values: Mapping[str, Any] | None
) -> ColumnElement[bool]:
    if shape is None:
        return true()
    conditions = [
        _grant_condition(grant, columns, _Names(index), values) for index, grant in enumerate(shape)
    ]
    return or_(false(), *conditions)


def _grant_condition(
    shape: GrantShape, columns: ScopeColumns, names: _Names, values: Mapping[str, Any] | None
) -> ColumnElement[bool]:
    def param(name: str, **kwargs: Any) -> Any:
        if values is None:
            return bindparam(name, **kwargs)
        return bindparam(name, values[name], **kwargs)

    parts: list[ColumnElement[bool]] = []
    if shape.departments:
        if columns.department is None:
            return false()
        parts.append(columns.department.in_(param(names.departments, expanding=True)))
    if shape.regions is not None:
        if columns.region is None:
            return false()
        region = columns.region
        rules: list[ColumnElement[bool]] = []
        for position, subtree in enumerate(shape.regions):
            rules.append(region == param(names.region(position)))
            if subtree:
                # substr rather than LIKE: exact and case-sensitive on every backend, no escaping.
                length = param(names.region_length(position), type_=Integer)
                start = func.substr(region, 1, length)
                rules.append(start == param(names.region_prefix(position)))
        parts.append(or_(false(), *rules))
    if shape.categories:
        if columns.category is None:
            return false()
        parts.append(columns.category.in_(param(names.categories, expanding=True)))
    if shape.owner_self:
        if columns.owner is None:
            return false()
        parts.append(columns.owner == param(USER_PARAMETER))
    return and_(true(), *parts)


def in_scope(principal: Principal, record: ScopeValues) -> bool:
    """Whether ``principal``'s grants cover a record with these dimension values."""
    return any(grant.allows(record, principal.user_id) for grant in principal.grants)


def scope_values(values: Mapping[str, Any]) -> ScopeValues:
    """The dimension values found under their ``SCOPE_FIELDS`` names in ``values``."""
    return ScopeValues(**{name: values.get(name) for name in SCOPE_FIELDS})


def blamed_fields(principal: Principal, record: ScopeValues, written: Iterable[str]) -> list[str]:
    """The written fields that keep ``record`` out of ``principal``'s scope.

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


def check_in_scope(
    principal: Principal, record: ScopeValues, written: Iterable[str], *, noun: str = "record"
) -> None:
    """``ValidationFailed`` on the offending fields unless ``principal`` may hold ``record``;
    ``written`` names the fields the write sets, ``noun`` what the record is to its reader."""
    if in_scope(principal, record):
        return
    fields = blamed_fields(principal, record, written) or list(SCOPE_FIELDS)
    raise ValidationFailed(
        f"the {noun} would be outside your data scope",
        {"errors": {name: [OUTSIDE] for name in fields}},
    )


def _by_field(grant: Grant) -> dict[str, Grant]:
    """``grant`` split into one single-dimension grant per scope field."""
    return {
        "owner_id": Grant(owner_self=grant.owner_self),
        "department_id": Grant(departments=grant.departments),
        "region": Grant(regions=grant.regions),
        "category": Grant(categories=grant.categories),
    }


def parse_grants(raw: Iterable[Any]) -> tuple[Grant, ...]:
    return tuple(g if isinstance(g, Grant) else Grant.from_dict(g) for g in raw)


def _list(value: Any) -> list[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple | set | frozenset):
        raise MalformedGrant("a constraint must be a list")
    return list(value)


def _string_set(value: Any, name: str) -> frozenset[str] | None:
    if value is None:
        return None
    items = _list(value)
    if not all(isinstance(item, str) for item in items):
        raise MalformedGrant(f"{name} must be a list of strings")
    return frozenset(items)


def _region_rule(value: Any) -> RegionRule:
    if isinstance(value, RegionRule):
        return value
    if not isinstance(value, Mapping) or not isinstance(value.get("path"), str):
        raise MalformedGrant("a region constraint is {'path': str, 'subtree': bool}")
    subtree = value.get("subtree", True)
    if not isinstance(subtree, bool):
        raise MalformedGrant("a region's subtree flag must be true or false")
    path = value["path"].strip(REGION_SEPARATOR)
    if not path:
        raise MalformedGrant("a region path must not be empty")
    return RegionRule(path, subtree)
