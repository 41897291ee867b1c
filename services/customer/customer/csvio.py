"""CSV in and out: headers in English (as exported) or Chinese, UTF-8 with a BOM for Excel.

Exported cells that a spreadsheet would take for a formula (starting ``= + - @``) are prefixed
with an apostrophe, and long digit strings (credit codes, phone numbers) with a tab so Excel
keeps them as text; import strips both again, so an exported file imports unchanged.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from typing import Any

from crm_common.errors import ValidationFailed
from customer.models import CUSTOMER_FIELDS

BOM = "\ufeff"

EXPORT_COLUMNS = ("code", *CUSTOMER_FIELDS, "created_at", "updated_at")
IMPORT_COLUMNS = frozenset(EXPORT_COLUMNS) - {"created_at", "updated_at"}
IGNORED_COLUMNS = frozenset({"id", "created_at", "updated_at", "version", "merged_into_id"})

HEADER_ALIASES = {
    "编码": "code",
    "客户编码": "code",
    "名称": "name",
    "客户名称": "name",
    "简称": "short_name",
    "客户简称": "short_name",
    "类型": "kind",
    "客户类型": "kind",
    "状态": "status",
    "客户状态": "status",
    "分类": "category",
    "客户分类": "category",
    "行业": "industry",
    "地区": "region",
    "区域": "region",
    "地址": "address",
    "电话": "phone",
    "统一社会信用代码": "credit_code",
    "信用代码": "credit_code",
    "ERP编码": "erp_code",
    "ERP客户编码": "erp_code",
    "信用等级": "credit_level",
    "成立日期": "established_on",
    "负责人": "owner_id",
    "业务员": "owner_id",
    "部门": "department_id",
    "标签": "tags",
    "备注": "remark",
    "创建时间": "created_at",
    "更新时间": "updated_at",
}
VALUE_ALIASES = {
    "status": {"潜在": "potential", "正式": "formal", "休眠": "dormant", "停用": "disabled"},
    "kind": {"企业": "enterprise", "个人": "individual"},
}

_FORMULA_START = ("=", "+", "-", "@")
_DIGITS = re.compile(r"\d{8,}")


def escape_cell(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    if _DIGITS.fullmatch(text):
        return "\t" + text
    return text


def unescape_cell(value: str | None) -> str:
    text = (value or "").strip()
    if text.startswith("'") and text[1:2] in _FORMULA_START:
        text = text[1:]
    return text


def parse(text: str) -> list[tuple[int, dict[str, str]]]:
    """Rows as (spreadsheet row number, {field: cell}); the header is row 1. Blank rows are
    skipped; a header problem fails the whole file."""
    if not isinstance(text, str):
        raise ValidationFailed.on("csv", "send the file as text")
    text = text.lstrip(BOM)
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise ValidationFailed.on("csv", "the file is empty") from None
    except csv.Error as exc:
        raise ValidationFailed.on("csv", f"not readable as CSV: {exc}") from None
    fields: list[str | None] = []
    problems: list[str] = []
    for cell in header:
        name = cell.strip().lstrip(BOM)
        field = HEADER_ALIASES.get(name, name.lower())
        if field in IGNORED_COLUMNS:
            fields.append(None)
        elif field in IMPORT_COLUMNS:
            if field in fields:
                problems.append(f"column {name!r} appears twice")
            fields.append(field)
        else:
            problems.append(f"unknown column {name!r}")
    if "name" not in fields and "code" not in fields and "credit_code" not in fields:
        problems.append("need a name column, or code / credit_code to update existing customers")
    if problems:
        allowed = ", ".join(sorted(IMPORT_COLUMNS))
        raise ValidationFailed(
            "the CSV header is not usable", {"errors": {"csv": problems + [f"columns: {allowed}"]}}
        )
    rows = []
    try:
        for number, cells in enumerate(reader, start=2):
            if not any(cell.strip() for cell in cells):
                continue
            row: dict[str, str] = {}
            for column, cell in zip(fields, cells, strict=False):
                if column is not None:
                    row[column] = unescape_cell(cell)
            if len(cells) > len(fields) and any(c.strip() for c in cells[len(fields) :]):
                row["__extra__"] = "1"
            rows.append((number, row))
    except csv.Error as exc:
        raise ValidationFailed.on("csv", f"not readable as CSV: {exc}") from None
    return rows


def apply_value_aliases(row: Mapping[str, str]) -> dict[str, str]:
    data = dict(row)
    for field, aliases in VALUE_ALIASES.items():
        if field in data:
            data[field] = aliases.get(data[field], data[field])
    return data


def write(rows: Iterable[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        writer.writerow([escape_cell(_cell(row.get(c))) for c in EXPORT_COLUMNS])
    return out.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return value
