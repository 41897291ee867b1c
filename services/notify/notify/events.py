"""Events the notify service publishes on the ``notify.events`` exchange: each name with the
schema of its envelope's ``data`` (published through ``api_events``)."""

from __future__ import annotations

from marshmallow import Schema

EVENT_SCHEMAS: dict[str, type[Schema]] = {}
