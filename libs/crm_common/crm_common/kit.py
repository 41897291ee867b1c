"""The base every service class starts from: the call context, metrics, the garbage collector's
tuning (``crm_common.runtime``), and the entrypoints that every service answers the same way
(``ping``, ``api_schemas``, ``api_events``, open to anonymous callers, and the dead-letter RPCs,
which need the permission ``system:admin``).

A service declares its name, its ``db`` and ``outbox`` dependencies, and two mappings:
``public_schemas`` (the marshmallow schemas of its HTTP-facing records, published as OpenAPI
components) and ``event_schemas`` (the ``data`` schema of each event it publishes, published
as JSON schemas for the AsyncAPI document). A service that handles events also names its
inbox model (see ``crm_common.consumer``)::

    from crm_common import kit

    class SalesService(kit.ServiceKit):
        name = "sales"
        db = Database(Base)
        outbox = Outbox(OutboxMessage)
        public_schemas = PUBLIC_SCHEMAS
        event_schemas = EVENT_SCHEMAS
        inbox_model = InboxEvent

Import the module, not the class: ``nameko run <service>.service`` starts every class with
entrypoints found at the top level of the service's module, and the base alone is no service.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from marshmallow import Schema

from crm_common.context import CallContext, current_principal
from crm_common.dead_letters import DeadLetterQueue, DeadLetters
from crm_common.entrypoints import public, rpc
from crm_common.idempotency import IdempotencyContext
from crm_common.metrics import Metrics
from crm_common.models import InboxMixin
from crm_common.runtime import CollectorTuning
from crm_common.schemas import json_schemas

ADMIN_PERMISSION = "system:admin"


class ServiceKit:
    name: ClassVar[str]
    public_schemas: ClassVar[Mapping[str, type[Schema]]] = {}
    event_schemas: ClassVar[Mapping[str, type[Schema]]] = {}
    inbox_model: ClassVar[type[InboxMixin] | None] = None

    context = CallContext()
    idempotency = IdempotencyContext()  # the Idempotency-Key of a write, if it has one
    metrics = Metrics()
    collector = CollectorTuning()
    dead_letters: DeadLetterQueue = DeadLetters()  # a worker sees the queue itself

    @rpc
    @public
    def ping(self) -> str:
        return "pong"

    @rpc
    @public
    def api_schemas(self) -> dict[str, Any]:
        """JSON schemas of ``public_schemas`` by name, with references between them."""
        return json_schemas(self.name, self.public_schemas)

    @rpc
    @public
    def api_events(self) -> dict[str, Any]:
        """The JSON schema of each published event's ``data``, by event type."""
        return json_schemas(self.name, self.event_schemas)

    @rpc
    def list_dead_letters(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        """Dead letters oldest first; ``query``: ``handler``, ``event_type``, ``limit``,
        ``cursor``."""
        current_principal().require(ADMIN_PERMISSION)
        return self.dead_letters.list(query)

    @rpc
    def get_dead_letter(self, dead_letter_id: str) -> dict[str, Any]:
        current_principal().require(ADMIN_PERMISSION)
        return self.dead_letters.get(dead_letter_id)

    @rpc
    def replay_dead_letter(self, dead_letter_id: str) -> dict[str, Any]:
        current_principal().require(ADMIN_PERMISSION)
        return self.dead_letters.replay(dead_letter_id)

    @rpc
    def discard_dead_letter(self, dead_letter_id: str) -> dict[str, Any]:
        current_principal().require(ADMIN_PERMISSION)
        return self.dead_letters.discard(dead_letter_id)
