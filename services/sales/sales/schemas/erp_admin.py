"""Schemas of erp_admin."""

from __future__ import annotations

from marshmallow import Schema

PUBLIC_SCHEMAS: dict[str, type[Schema]] = {}
