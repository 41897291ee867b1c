"""Schemas of rules."""

from __future__ import annotations

from marshmallow import Schema

PUBLIC_SCHEMAS: dict[str, type[Schema]] = {}
