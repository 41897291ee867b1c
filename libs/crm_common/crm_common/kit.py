"""The base every service class starts from: the call context and the entrypoints that every
service answers the same way (``ping``, ``api_schemas``, ``api_events``).

A service declares its name, its ``db`` and ``outbox`` dependencies, and two mappings:
``public_schemas`` (the marshmallow schemas of its HTTP-facing records, published as OpenAPI
components) and ``event_schemas`` (the ``data`` schema of each event it publishes, published
as JSON schemas for the AsyncAPI document)::

    from crm_common import kit

    class SalesService(kit.ServiceKit):
        name = "sales"
        db = Database(Base)
        outbox = Outbox(OutboxMessage)
        public_schemas = PUBLIC_SCHEMAS
        event_schemas = EVENT_SCHEMAS

Import the module, not the class: ``nameko run <service>.service`` starts every class with
entrypoints found at the top level of the service's module, and the base alone is no service.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from marshmallow import Schema

from crm_common.context import CallContext
from crm_common.entrypoints import rpc
from crm_common.schemas import json_schemas


class ServiceKit:
    name: ClassVar[str]
    public_schemas: ClassVar[Mapping[str, type[Schema]]] = {}
    event_schemas: ClassVar[Mapping[str, type[Schema]]] = {}

    context = CallContext()

    @rpc
    def ping(self) -> str:
        return "pong"

    @rpc
    def api_schemas(self) -> dict[str, Any]:
        """JSON schemas of ``public_schemas`` by name, with references between them."""
        return json_schemas(self.name, self.public_schemas)

    @rpc
    def api_events(self) -> dict[str, Any]:
        """The JSON schema of each published event's ``data``, by event type."""
        return json_schemas(self.name, self.event_schemas)
