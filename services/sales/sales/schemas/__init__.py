"""Marshmallow schemas of the sales service, one module per aggregate: what it accepts
(``crm_common.schemas.StrictSchema``) and returns. ``PUBLIC_SCHEMAS``, every module's, become
the gateway's OpenAPI components."""

from __future__ import annotations

from marshmallow import Schema

from sales.schemas import (
    activities,
    catalog,
    erp_admin,
    expenses,
    forecast,
    opportunities,
    orders,
    quotes,
    receivables,
    targets,
)
from sales.schemas.common import RecordSchema

PUBLIC_SCHEMAS: dict[str, type[Schema]] = {
    "Record": RecordSchema,
    **opportunities.PUBLIC_SCHEMAS,
    **activities.PUBLIC_SCHEMAS,
    **expenses.PUBLIC_SCHEMAS,
    **targets.PUBLIC_SCHEMAS,
    **forecast.PUBLIC_SCHEMAS,
    **catalog.PUBLIC_SCHEMAS,
    **quotes.PUBLIC_SCHEMAS,
    **orders.PUBLIC_SCHEMAS,
    **receivables.PUBLIC_SCHEMAS,
    **erp_admin.PUBLIC_SCHEMAS,
}
