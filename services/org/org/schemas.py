"""Marshmallow schemas: what the org service accepts (validated, unknown fields refused) and
what it returns. The gateway's OpenAPI document is generated from these."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validates
from marshmallow.validate import Length, OneOf, Range, Regexp

from crm_common.phones import normalize_mobile
from crm_common.schemas import CommaList, StrictSchema, Text, UtcDateTime, describe
from org.domain.grants import CATEGORIES
from org.domain.permissions import CATALOG, unknown_permissions
from org.domain.trees import check_region_name
from org.models import DEPARTMENT_TYPES, PERSON_STATUSES

CODE_RULE = Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", error="use letters, digits, _ . -")
USERNAME_RULE = Regexp(
    r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$", error="use letters, digits and _ . @ - only"
)
CREATE_ONLY = "x-create-only"
"""Marks an input field that a change (PATCH) does not take; the gateway leaves it out of
the patch schema it derives."""


# -- fields ---------------------------------------------------------------------------------
class Mobile(Text):
    """A mainland-China mobile number; +86 and separators are accepted, 11 digits stored."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if text is None:
            return None
        try:
            return normalize_mobile(text)
        except ValueError:
            raise ValidationError("must be an 11-digit mainland-China mobile number") from None


class RecordSchema(Schema):
    """What every org record carries."""

    id = fields.String(dump_only=True)
    disabled = fields.Boolean(dump_only=True)
    created_at = UtcDateTime(dump_only=True)
    updated_at = UtcDateTime(dump_only=True)
    version = fields.Integer(
        dump_only=True, metadata=describe("Send back as expected_version / If-Match")
    )


# -- departments and regions ------------------------------------------------------------------
class DepartmentInputSchema(StrictSchema):
    code = Text(
        required=True,
        validate=[Length(max=32), CODE_RULE],
        metadata=describe("Unique code", "0201"),
    )
    name = Text(required=True, validate=Length(max=100), metadata=describe("Name", "上海办事处"))
    type = fields.String(
        required=True,
        validate=OneOf(DEPARTMENT_TYPES),
        metadata=describe("sales, marketing, business (商务), service or operations"),
    )
    parent_id = Text(allow_none=True, metadata=describe("The department above; null for a root"))
    manager_id = Text(allow_none=True, metadata=describe("The person who manages it"))
    city = Text(allow_none=True, validate=Length(max=50), metadata=describe("City", "上海"))


class DepartmentSchema(RecordSchema):
    code = fields.String()
    name = fields.String()
    type = fields.String(validate=OneOf(DEPARTMENT_TYPES))
    parent_id = fields.String(allow_none=True)
    manager_id = fields.String(allow_none=True)
    city = fields.String(allow_none=True)
    path = fields.String(
        dump_only=True, metadata=describe("Names from the root", "总部 › 华东分公司 › 上海办事处")
    )


class RegionInputSchema(StrictSchema):
    code = Text(
        required=True, validate=[Length(max=32), CODE_RULE], metadata=describe("Unique code", "32")
    )
    name = Text(
        required=True,
        validate=Length(max=50),
        metadata=describe("Name, one level of a path (no '/')", "江苏"),
    )
    parent_id = Text(allow_none=True, metadata=describe("The region above; null for a top region"))

    @validates("name")
    def _one_level(self, value: str, **kwargs: Any) -> None:
        try:
            check_region_name(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc


class RegionSchema(RecordSchema):
    code = fields.String()
    name = fields.String()
    parent_id = fields.String(allow_none=True)
    path = fields.String(
        dump_only=True,
        metadata=describe("Names from the top joined by '/', as customers carry it", "华东/江苏"),
    )


# -- people and users -------------------------------------------------------------------------
class PersonInputSchema(StrictSchema):
    code = Text(
        required=True,
        validate=[Length(max=32), CODE_RULE],
        metadata=describe("Unique code", "P0001"),
    )
    name = Text(required=True, validate=Length(max=100), metadata=describe("Name", "王伟"))
    department_id = Text(allow_none=True)
    position = Text(
        allow_none=True, validate=Length(max=100), metadata=describe("职务", "销售代表")
    )
    mobile = Mobile(allow_none=True, metadata=describe("Mobile phone", "13812345678"))
    email = fields.Email(allow_none=True, validate=Length(max=200))
    is_salesperson = fields.Boolean(load_default=False)
    is_service_engineer = fields.Boolean(load_default=False)
    status = fields.String(
        load_default="active",
        validate=OneOf(PERSON_STATUSES),
        metadata=describe("active, or left (离职): a person who left cannot sign in"),
    )


class PersonSchema(RecordSchema):
    code = fields.String()
    name = fields.String()
    department_id = fields.String(allow_none=True)
    position = fields.String(allow_none=True)
    mobile = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    is_salesperson = fields.Boolean()
    is_service_engineer = fields.Boolean()
    status = fields.String(validate=OneOf(PERSON_STATUSES))


class SharedPersonSchema(PersonSchema):
    """A person as other contexts keep them (``person_changed``, the people snapshot): the
    record, the user account linked to it and the codes of that user's enabled roles."""

    user_id = fields.String(
        allow_none=True, metadata=describe("The person's user account; null if they have none")
    )
    role_codes = fields.List(
        fields.String(),
        metadata=describe(
            "The codes of the enabled roles the user account holds (sorted; empty without one)",
            ["sales_rep"],
        ),
    )


class UserInputSchema(StrictSchema):
    username = Text(
        required=True,
        validate=[Length(min=3, max=64), USERNAME_RULE],
        metadata=describe("Unique regardless of case", "sales01"),
    )
    password = fields.String(
        required=True,
        load_only=True,
        metadata={
            **describe(
                "Only when creating (then reset_password): at least 8 characters, letters and "
                "digits, not containing the username"
            ),
            CREATE_ONLY: True,
        },
    )
    person_id = Text(allow_none=True, metadata=describe("The person this account belongs to"))
    role_ids = CommaList(Text(validate=Length(max=64)), load_default=list)


class UserSchema(RecordSchema):
    username = fields.String()
    person_id = fields.String(allow_none=True)
    department_id = fields.String(
        dump_only=True, allow_none=True, metadata=describe("The person's department")
    )
    role_ids = fields.List(fields.String())
    failed_attempts = fields.Integer(dump_only=True)
    locked_until = UtcDateTime(dump_only=True, allow_none=True)
    last_sign_in_at = UtcDateTime(dump_only=True, allow_none=True)
    password_changed_at = UtcDateTime(dump_only=True, allow_none=True)
    authz_version = fields.Integer(
        dump_only=True, metadata=describe("Grows whenever what the user may do or see changes")
    )


# -- roles and grants -------------------------------------------------------------------------
class RoleInputSchema(StrictSchema):
    code = Text(
        required=True,
        validate=[Length(max=50), CODE_RULE],
        metadata=describe("Unique code", "sales_rep"),
    )
    name = Text(required=True, validate=Length(max=100), metadata=describe("Name", "销售代表"))
    permissions = fields.List(
        fields.String(),
        load_default=list,
        metadata=describe("Codes from the permission catalog", ["customer:read"]),
    )
    description = Text(allow_none=True, validate=Length(max=2000))

    @validates("permissions")
    def _known(self, value: list[str], **kwargs: Any) -> None:
        unknown = unknown_permissions(value)
        if unknown:
            raise ValidationError(f"not in the permission catalog: {', '.join(unknown)}")


class RoleSchema(RecordSchema):
    code = fields.String()
    name = fields.String()
    permissions = fields.List(fields.String(validate=OneOf(list(CATALOG))))
    description = fields.String(allow_none=True)


class DepartmentRefSchema(StrictSchema):
    department_id = Text(required=True)
    include_children = fields.Boolean(
        load_default=False, metadata=describe("Also every department below it")
    )


class RegionRefSchema(StrictSchema):
    region_id = Text(required=True)
    include_children = fields.Boolean(
        load_default=False, metadata=describe("Also every region below it")
    )


class Categories(fields.List[str]):
    """Customer categories, as a list or one comma-separated string."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(fields.String(validate=OneOf(CATEGORIES)), **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> list[Any]:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return sorted(set(super()._deserialize(value, attr, data, **kwargs)))


DIMENSION_HELP = "null: not restricted by this dimension; an empty list: covers nothing"


class GrantInputSchema(StrictSchema):
    name = Text(
        allow_none=True,
        validate=Length(max=100),
        metadata=describe("What the grant is for", "华东分公司客户"),
    )
    role_id = Text(allow_none=True, metadata=describe("Give either role_id or user_id"))
    user_id = Text(allow_none=True, metadata=describe("Give either role_id or user_id"))
    departments = fields.List(
        fields.Nested(DepartmentRefSchema),
        allow_none=True,
        load_default=None,
        metadata=describe("Records of these departments. " + DIMENSION_HELP),
    )
    regions = fields.List(
        fields.Nested(RegionRefSchema),
        allow_none=True,
        load_default=None,
        metadata=describe("Records in these regions. " + DIMENSION_HELP),
    )
    categories = Categories(
        allow_none=True,
        load_default=None,
        metadata=describe("Customers of these categories. " + DIMENSION_HELP, ["A", "VIP"]),
    )
    owner_self = fields.Boolean(load_default=False, metadata=describe("Only records the user owns"))


class GrantSchema(RecordSchema):
    name = fields.String(allow_none=True)
    role_id = fields.String(allow_none=True)
    user_id = fields.String(allow_none=True)
    departments = fields.List(fields.Nested(DepartmentRefSchema), allow_none=True)
    regions = fields.List(fields.Nested(RegionRefSchema), allow_none=True)
    categories = fields.List(fields.String(validate=OneOf(CATEGORIES)), allow_none=True)
    owner_self = fields.Boolean()


# -- queries ----------------------------------------------------------------------------------
class QuerySchema(StrictSchema):
    q = Text(allow_none=True, validate=Length(max=100), metadata=describe("Part of a code or name"))
    disabled = fields.Boolean(
        allow_none=True,
        metadata=describe("Only disabled (true) or only enabled (false) records"),
    )
    cursor = Text(allow_none=True, metadata=describe("next_cursor of the previous page"))
    limit = fields.Integer(
        allow_none=True, validate=Range(min=1), metadata=describe("Page size, 200 at most")
    )


class TreeQuerySchema(QuerySchema):
    parent_id = Text(allow_none=True, metadata=describe("Only the records right below this one"))


class PersonQuerySchema(QuerySchema):
    department_id = Text(allow_none=True, metadata=describe("Only people of this department"))


class UserQuerySchema(QuerySchema):
    role_id = Text(allow_none=True, metadata=describe("Only users having this role"))


class GrantQuerySchema(QuerySchema):
    role_id = Text(allow_none=True, metadata=describe("Only grants given to this role"))
    user_id = Text(allow_none=True, metadata=describe("Only grants given to this user"))


class DepartmentQuerySchema(TreeQuerySchema):
    """Published per kind, so that each list route documents its own query."""


class RegionQuerySchema(TreeQuerySchema):
    """Published per kind, so that each list route documents its own query."""


class RoleQuerySchema(QuerySchema):
    """Published per kind, so that each list route documents its own query."""


class AuditQuerySchema(StrictSchema):
    entity_type = fields.String(
        allow_none=True,
        validate=OneOf(["department", "region", "person", "user", "role", "grant"]),
    )
    entity_id = Text(allow_none=True, metadata=describe("Id of the record changed"))
    actor_id = Text(allow_none=True, metadata=describe("Id of the user who made the change"))
    cursor = Text(allow_none=True, metadata=describe("next_cursor of the previous page"))
    limit = fields.Integer(
        allow_none=True, validate=Range(min=1), metadata=describe("Page size, 200 at most")
    )


# -- audit, permissions, the signed-in user ---------------------------------------------------
class AuditEntrySchema(Schema):
    id = fields.String()
    entity_type = fields.String()
    entity_id = fields.String()
    action = fields.String(
        metadata=describe(
            "created, updated, disabled, enabled, password_changed, password_reset, locked, "
            "unlocked"
        )
    )
    changes = fields.List(
        fields.Dict(),
        allow_none=True,
        metadata=describe("[{field, old, new}]; passwords appear only as the action"),
    )
    actor_id = fields.String(allow_none=True)
    at = UtcDateTime()


class PermissionSchema(Schema):
    code = fields.String(metadata=describe("A permission", "customer:read"))
    description = fields.String()


class MeRoleSchema(Schema):
    id = fields.String()
    code = fields.String()
    name = fields.String()


class MeGrantSchema(GrantSchema):
    source = fields.String(
        validate=OneOf(["role", "user"]),
        metadata=describe("Given to one of the user's roles or to the user"),
    )


class RegionRuleSchema(Schema):
    path = fields.String(metadata=describe("Region path", "华东/江苏"))
    subtree = fields.Boolean()


class CompiledGrantSchema(Schema):
    """A grant as principals carry it; a key left out does not restrict that dimension."""

    departments = fields.List(fields.String(), metadata=describe("Every department id covered"))
    regions = fields.List(fields.Nested(RegionRuleSchema))
    categories = fields.List(fields.String(validate=OneOf(CATEGORIES)))
    owner = fields.String(validate=OneOf(["self"]))


class MeSchema(Schema):
    user = fields.Nested(UserSchema)
    person = fields.Nested(PersonSchema, allow_none=True)
    department = fields.Nested(DepartmentSchema, allow_none=True)
    roles = fields.List(fields.Nested(MeRoleSchema))
    permissions = fields.List(fields.String())
    grants = fields.List(fields.Nested(MeGrantSchema))
    scope = fields.List(
        fields.Nested(CompiledGrantSchema),
        metadata=describe("The grants compiled against today's trees, as the token carries them"),
    )


PUBLIC_SCHEMAS: dict[str, type[Schema]] = {
    # Nested schemas first, so the others refer to them by these names.
    "DepartmentRef": DepartmentRefSchema,
    "RegionRef": RegionRefSchema,
    "RegionRule": RegionRuleSchema,
    "CompiledGrant": CompiledGrantSchema,
    "MeRole": MeRoleSchema,
    "Department": DepartmentSchema,
    "DepartmentInput": DepartmentInputSchema,
    "Region": RegionSchema,
    "RegionInput": RegionInputSchema,
    "Person": PersonSchema,
    "PersonInput": PersonInputSchema,
    "User": UserSchema,
    "UserInput": UserInputSchema,
    "Role": RoleSchema,
    "RoleInput": RoleInputSchema,
    "Grant": GrantSchema,
    "GrantInput": GrantInputSchema,
    "MeGrant": MeGrantSchema,
    "AuditEntry": AuditEntrySchema,
    "DepartmentQuery": DepartmentQuerySchema,
    "RegionQuery": RegionQuerySchema,
    "PersonQuery": PersonQuerySchema,
    "UserQuery": UserQuerySchema,
    "RoleQuery": RoleQuerySchema,
    "GrantQuery": GrantQuerySchema,
    "AuditQuery": AuditQuerySchema,
    "Permission": PermissionSchema,
    "Me": MeSchema,
}
