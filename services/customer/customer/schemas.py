"""Marshmallow schemas: what the customer service accepts (validated, unknown fields refused)
and what it returns. The gateway's OpenAPI document is generated from these."""

from __future__ import annotations

import datetime as dt
from typing import Any

from marshmallow import Schema, ValidationError, fields, validates_schema
from marshmallow.validate import Length, OneOf, Range, Regexp

from crm_common.phones import normalize_mobile
from crm_common.schemas import CommaList, StrictSchema, Text, UtcDateTime, describe
from customer.domain import regions
from customer.domain.anniversaries import MAX_WINDOW_DAYS
from customer.domain.credit_code import validate_credit_code
from customer.domain.phones import normalize_phone
from customer.domain.relationships import INVERSE, Kind
from customer.domain.status import SETTABLE, Status
from customer.domain.tags import MAX_TAG_LENGTH, normalize_tag, normalize_tags

KINDS = ("enterprise", "individual")
CATEGORIES = ("A", "B", "C", "VIP")
CREDIT_LEVELS = ("AAA", "AA", "A", "B", "C", "D")
PURCHASE_ROLES = ("decision_maker", "influencer", "user", "buyer", "gatekeeper", "other")
CARE_KINDS = ("birthday", "festival", "visit", "gift", "call", "other")
SORTS = ("name", "-name", "created_at", "-created_at", "code", "-code")
ALL_STATUSES = tuple(s.value for s in Status)

ERP_CODE_HELP = (
    "The ERP's code of this customer (U8 客户编码), by which ERP events may name it: up to 40 "
    "characters without spaces, kept as written; unique among customers"
)
ERP_CODE_PATTERN = Regexp(r"^\S{1,40}$", error="up to 40 characters without spaces")

REGION_HELP = (
    "Sales region as a path 大区/省/市 with 1 to 3 levels, e.g. 华东, 华东/上海, 华东/江苏/苏州. "
    "The first level is one of " + "、".join(regions.AREAS) + ". Filtering by a region also "
    "matches every region below it."
)


# -- fields ---------------------------------------------------------------------------------
class _Normalized(Text):
    """Text checked and tidied by a domain function raising ``ValueError``."""

    normalizer: Any = None

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if text is None:
            return None
        try:
            return type(self).normalizer(text)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc


class CreditCode(_Normalized):
    normalizer = staticmethod(validate_credit_code)


class Mobile(_Normalized):
    normalizer = staticmethod(normalize_mobile)


class Phone(_Normalized):
    normalizer = staticmethod(normalize_phone)


class Region(_Normalized):
    normalizer = staticmethod(regions.normalize_region)


class Tag(_Normalized):
    normalizer = staticmethod(normalize_tag)


class Tags(fields.List[str]):
    """A list of tags, or one string of tags separated by commas."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(Tag(validate=Length(max=MAX_TAG_LENGTH)), **kwargs)

    # marshmallow types a list's items as optional; a Tag never loads None.
    def _deserialize(  # type: ignore[override]
        self, value: Any, attr: Any, data: Any, **kwargs: Any
    ) -> list[str]:
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        tags = super()._deserialize(value, attr, data, **kwargs)
        try:
            return normalize_tags(tag for tag in tags if tag is not None)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc


class TagFilter(Tags):
    """Tags to filter by: repeated parameters, comma-separated values, or both."""

    def _deserialize(  # type: ignore[override]
        self, value: Any, attr: Any, data: Any, **kwargs: Any
    ) -> list[str]:
        if isinstance(value, list):
            value = [part for item in value for part in _split_text(item)]
        return super()._deserialize(value, attr, data, **kwargs)


def _split_text(item: Any) -> list[Any]:
    return [part for part in item.split(",") if part.strip()] if isinstance(item, str) else [item]


class PastDate(fields.Date):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> dt.date:
        day = super()._deserialize(value, attr, data, **kwargs)
        if day > dt.date.today() or day.year < 1900:
            raise ValidationError("must be a date between 1900 and today")
        return day


# -- customers ------------------------------------------------------------------------------
class CustomerInputSchema(StrictSchema):
    """A new customer (POST); with ``partial=True`` the changes of an update (PATCH)."""

    name = Text(
        required=True,
        validate=Length(min=2, max=200),
        metadata=describe("Full registered name", "上海华东机电设备有限公司"),
    )
    short_name = Text(allow_none=True, validate=Length(max=100), metadata=describe("简称"))
    kind = fields.String(
        load_default="enterprise",
        validate=OneOf(KINDS),
        metadata=describe("enterprise or individual"),
    )
    status = fields.String(
        load_default=Status.POTENTIAL.value,
        validate=OneOf([s.value for s in SETTABLE]),
        metadata=describe("potential 潜在, formal 正式, dormant 休眠, disabled 停用"),
    )
    category = fields.String(allow_none=True, validate=OneOf(CATEGORIES))
    industry = Text(
        allow_none=True, validate=Length(max=100), metadata=describe("行业", "机电设备")
    )
    region = Region(
        allow_none=True, validate=Length(max=100), metadata=describe(REGION_HELP, "华东/上海")
    )
    address = Text(allow_none=True, validate=Length(max=300))
    phone = Phone(
        allow_none=True,
        validate=Length(max=40),
        metadata=describe("Landline or mobile; +86 accepted", "021-5888 1234"),
    )
    credit_code = CreditCode(
        allow_none=True,
        metadata=describe(
            "统一社会信用代码, 18 characters with a valid check character", "91350100M000100Y43"
        ),
    )
    erp_code = Text(allow_none=True, validate=ERP_CODE_PATTERN, metadata=describe(ERP_CODE_HELP))
    credit_level = fields.String(allow_none=True, validate=OneOf(CREDIT_LEVELS))
    established_on = PastDate(
        allow_none=True,
        metadata=describe("成立日期: the day the company was founded", "2003-06-18"),
    )
    owner_id = Text(
        allow_none=True,
        validate=Length(max=64),
        metadata=describe("Salesperson who owns the customer; defaults to the caller on create"),
    )
    department_id = Text(
        allow_none=True,
        validate=Length(max=64),
        metadata=describe("Department of the owner; defaults to the caller's on create"),
    )
    tags = Tags(
        metadata=describe("Free labels (≤ 20, ≤ 32 characters each)", ["重点客户", "年采购>100万"])
    )
    remark = Text(allow_none=True, validate=Length(max=2000))

    @validates_schema
    def _individuals_have_no_credit_code(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("kind") == "individual" and data.get("credit_code"):
            raise ValidationError(
                "an individual customer has no unified social credit code", "credit_code"
            )


class CustomerSchema(Schema):
    id = fields.UUID(dump_only=True)
    code = fields.String(
        dump_only=True, metadata=describe("C + year + 6-digit sequence", "C2026000123")
    )
    name = fields.String()
    short_name = fields.String(allow_none=True)
    kind = fields.String(validate=OneOf(KINDS))
    status = fields.String(validate=OneOf(ALL_STATUSES))
    category = fields.String(allow_none=True, validate=OneOf(CATEGORIES))
    industry = fields.String(allow_none=True)
    region = fields.String(allow_none=True, metadata=describe(REGION_HELP, "华东/上海"))
    address = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    credit_code = fields.String(allow_none=True)
    erp_code = fields.String(allow_none=True, metadata=describe(ERP_CODE_HELP, "C0001234"))
    credit_level = fields.String(allow_none=True)
    established_on = fields.Date(allow_none=True, metadata=describe("成立日期"))
    owner_id = fields.String(allow_none=True)
    department_id = fields.String(allow_none=True)
    tags = fields.List(fields.String())
    remark = fields.String(allow_none=True)
    merged_into_id = fields.UUID(allow_none=True, metadata=describe("Set once merged into another"))
    contacts_count = fields.Integer(dump_only=True, metadata=describe("Only in a single get"))
    created_at = UtcDateTime(dump_only=True)
    updated_at = UtcDateTime(dump_only=True)
    version = fields.Integer(
        dump_only=True, metadata=describe("Send back as expected_version / If-Match")
    )


class CustomerFilterSchema(StrictSchema):
    """Which customers a count or summary covers (a list takes the same, plus paging)."""

    q = Text(
        allow_none=True,
        validate=Length(max=100),
        metadata=describe("Part of name, short name, code, phone, contact name or mobile", "华东"),
    )
    status = CommaList(
        Text(validate=OneOf(ALL_STATUSES)),
        metadata=describe("One or more; merged ones only when asked"),
    )
    category = CommaList(Text(validate=OneOf(CATEGORIES)))
    kind = fields.String(validate=OneOf(KINDS))
    region = Region(allow_none=True, metadata=describe(REGION_HELP))
    owner_id = Text(allow_none=True)
    department_id = Text(allow_none=True)
    erp_code = Text(
        allow_none=True,
        validate=Length(max=40),
        metadata=describe("The customer with exactly this ERP code", "C0001234"),
    )
    tags = TagFilter(
        metadata=describe("Customers having all of these tags (repeat it or separate by commas)")
    )


class CustomerExportQuerySchema(CustomerFilterSchema):
    """Which customers an export covers, in which order."""

    sort = fields.String(load_default="-created_at", validate=OneOf(SORTS))


class CustomerQuerySchema(CustomerExportQuerySchema):
    """A page of customers: the filters, the order, and where the page starts."""

    cursor = Text(allow_none=True, metadata=describe("next_cursor of the previous page"))
    limit = fields.Integer(
        allow_none=True,
        validate=Range(min=1),
        metadata=describe("Page size: 50 unless given, 200 at most"),
    )


class DuplicateCandidateSchema(Schema):
    id = fields.UUID(metadata=describe("Only when in_scope"))
    code = fields.String(metadata=describe("Only when in_scope"))
    name = fields.String(metadata=describe("Only when in_scope"))
    in_scope = fields.Boolean(
        metadata=describe(
            "Whether the caller may see this customer. One entry with only in_scope false "
            "stands for every likely duplicate the caller may not see"
        )
    )
    score = fields.Float(
        metadata=describe("Only when in_scope: 0..1, higher is more likely the same customer")
    )
    reasons = fields.List(
        fields.String(
            validate=OneOf(["same_credit_code", "same_name", "similar_name", "same_phone"])
        ),
        metadata=describe("Only when in_scope: why it looks like the same customer"),
    )


class CustomerCountSchema(Schema):
    count = fields.Integer(
        metadata=describe(
            "Customers matching the filters in the caller's scope: exact unless `estimated`"
        )
    )
    estimated = fields.Boolean(
        metadata=describe(
            "Present and true when `count` is an estimate: on PostgreSQL, a count that would "
            "read every customer (text search `q`, `tags`, `erp_code`) estimated at "
            "COUNT_ESTIMATE_ABOVE (default 10,000) or more is answered from a 1 % sample of "
            "the table (text) or the planner's statistics (tags); below, counts are exact"
        )
    )


class CustomerSummarySchema(Schema):
    total = fields.Integer(metadata=describe("Exact unless `estimated`"))
    by_status = fields.Dict(keys=fields.String(), values=fields.Integer())
    by_category = fields.Dict(
        keys=fields.String(), values=fields.Integer(), metadata=describe('"none" for no category')
    )
    by_department = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata=describe('Department id, "none" for no department'),
    )
    estimated = fields.Boolean(
        metadata=describe(
            "Present and true when every figure is an estimate: on PostgreSQL, a text search "
            "`q` matching COUNT_ESTIMATE_ABOVE (default 10,000) customers or more by a 1 % "
            "sample of the table is broken down on that sample, scaled up (small groups may "
            "be missing); below, the figures are exact"
        )
    )


class CustomerPageSchema(Schema):
    items = fields.List(fields.Nested(CustomerSchema))
    next_cursor = fields.String(allow_none=True)


class MergeInputSchema(StrictSchema):
    survivor_id = fields.UUID(required=True)
    merged_id = fields.UUID(required=True)


# -- contacts ------------------------------------------------------------------------------
class ContactInputSchema(StrictSchema):
    name = Text(required=True, validate=Length(min=1, max=100), metadata=describe("姓名", "王建国"))
    title = Text(allow_none=True, validate=Length(max=100), metadata=describe("职务", "采购经理"))
    department = Text(allow_none=True, validate=Length(max=100))
    mobile = Mobile(
        allow_none=True,
        metadata=describe(
            "Mainland-China mobile; +86/86 accepted, stored as 11 digits", "13812345678"
        ),
    )
    phone = Phone(allow_none=True, validate=Length(max=40))
    email = fields.Email(allow_none=True, validate=Length(max=200))
    birthday = PastDate(allow_none=True)
    is_primary = fields.Boolean(load_default=False, metadata=describe("At most one per customer"))
    purchase_role = fields.String(
        allow_none=True,
        validate=OneOf(PURCHASE_ROLES),
        metadata=describe("Role in purchasing decisions"),
    )
    remark = Text(allow_none=True, validate=Length(max=2000))


class ContactSchema(Schema):
    id = fields.UUID(dump_only=True)
    customer_id = fields.UUID(dump_only=True)
    name = fields.String()
    title = fields.String(allow_none=True)
    department = fields.String(allow_none=True)
    mobile = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    birthday = fields.Date(allow_none=True)
    is_primary = fields.Boolean()
    purchase_role = fields.String(allow_none=True, validate=OneOf(PURCHASE_ROLES))
    remark = fields.String(allow_none=True)
    created_at = UtcDateTime(dump_only=True)
    updated_at = UtcDateTime(dump_only=True)
    version = fields.Integer(dump_only=True)


# -- relationships and care ----------------------------------------------------------------
class RelationshipInputSchema(StrictSchema):
    related_customer_id = fields.UUID(required=True)
    kind = fields.String(
        required=True,
        validate=OneOf([k.value for k in Kind]),
        metadata=describe(
            "What the related customer is to this one: parent 母公司, subsidiary 子公司, "
            "partner 合作伙伴, influences 影响"
        ),
    )
    note = Text(allow_none=True, validate=Length(max=500))


class RelationshipSchema(Schema):
    id = fields.UUID()
    customer_id = fields.UUID(metadata=describe("The customer the list was asked for"))
    related_customer_id = fields.UUID()
    related_customer_code = fields.String()
    related_customer_name = fields.String()
    kind = fields.String(
        validate=OneOf(sorted({*INVERSE, *INVERSE.values()})),
        metadata=describe(
            "What the related customer is to this one (influenced_by when it is the "
            "one being influenced)"
        ),
    )
    direction = fields.String(validate=OneOf(["outgoing", "incoming"]))
    note = fields.String(allow_none=True)
    created_by = fields.String(allow_none=True)
    created_at = UtcDateTime()


class CareRecordInputSchema(StrictSchema):
    kind = fields.String(required=True, validate=OneOf(CARE_KINDS))
    date = fields.Date(required=True)
    note = Text(allow_none=True, validate=Length(max=2000))
    contact_id = fields.UUID(allow_none=True, metadata=describe("The contact cared for, if one"))
    by_user_id = Text(
        allow_none=True, validate=Length(max=64), metadata=describe("Defaults to the caller")
    )


class CareRecordSchema(Schema):
    id = fields.UUID(dump_only=True)
    customer_id = fields.UUID()
    contact_id = fields.UUID(allow_none=True)
    kind = fields.String(validate=OneOf(CARE_KINDS))
    date = fields.Date()
    note = fields.String(allow_none=True)
    by_user_id = fields.String(allow_none=True)
    created_at = UtcDateTime(dump_only=True)


# -- history, import -----------------------------------------------------------------------
class HistoryEntrySchema(Schema):
    id = fields.UUID()
    at = UtcDateTime()
    actor_id = fields.String(allow_none=True)
    entity_type = fields.String(
        validate=OneOf(["customer", "contact", "relationship", "care_record"])
    )
    entity_id = fields.String()
    change = fields.String(metadata=describe("created, updated, merged, merged_into, removed, …"))
    field = fields.String(allow_none=True)
    old = fields.Raw(allow_none=True)
    new = fields.Raw(allow_none=True)


class HistoryPageSchema(Schema):
    items = fields.List(fields.Nested(HistoryEntrySchema))
    next_cursor = fields.String(allow_none=True)


class ImportErrorSchema(Schema):
    row = fields.Integer(metadata=describe("Spreadsheet row number: the header is row 1"))
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


class ImportResultSchema(Schema):
    created = fields.Integer()
    updated = fields.Integer()
    unchanged = fields.Integer()
    errors = fields.List(fields.Nested(ImportErrorSchema))


# -- due records (alert schedules) ---------------------------------------------------------
class DueRecordsQuerySchema(StrictSchema):
    """What ``due_records`` looks at: the days ahead, counted from a given day or today."""

    days = fields.Integer(
        required=True,
        strict=True,
        validate=Range(min=0, max=MAX_WINDOW_DAYS),
        metadata=describe("From today through today plus this many days", 7),
    )
    as_of = fields.Date(
        allow_none=True,
        metadata=describe("The day counted from; today in the business time zone unless given"),
    )


PUBLIC_SCHEMAS: dict[str, type[Schema]] = {
    "Customer": CustomerSchema,
    "CustomerInput": CustomerInputSchema,
    "CustomerFilter": CustomerFilterSchema,
    "CustomerExportQuery": CustomerExportQuerySchema,
    "CustomerQuery": CustomerQuerySchema,
    "CustomerPage": CustomerPageSchema,
    "CustomerCount": CustomerCountSchema,
    "CustomerSummary": CustomerSummarySchema,
    "DuplicateCandidate": DuplicateCandidateSchema,
    "MergeInput": MergeInputSchema,
    "Contact": ContactSchema,
    "ContactInput": ContactInputSchema,
    "Relationship": RelationshipSchema,
    "RelationshipInput": RelationshipInputSchema,
    "CareRecord": CareRecordSchema,
    "CareRecordInput": CareRecordInputSchema,
    "HistoryEntry": HistoryEntrySchema,
    "HistoryPage": HistoryPageSchema,
    "ImportError": ImportErrorSchema,
    "ImportResult": ImportResultSchema,
}
