"""The org service: thin Nameko RPC entrypoints over the use cases of ``org.application``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from crm_common import kit
from crm_common.application import NO_EVENTS, UseCaseContext
from crm_common.context import current_principal
from crm_common.db import Database
from crm_common.entrypoints import public, rpc
from crm_common.idempotency import not_idempotent
from crm_common.outbox import Outbox
from org.application.account import Account
from org.application.audit import AuditLog
from org.application.records import Records
from org.application.roles import Roles
from org.application.sessions import revocation_state
from org.application.sign_in import SignIn
from org.application.structure import Structure
from org.application.users import Users
from org.events import EVENT_SCHEMAS
from org.models import Base, OutboxMessage
from org.runtime import RuntimeProvider
from org.schemas import PUBLIC_SCHEMAS

SERVICE_NAME = "org"
SESSIONS_READ = "org:sessions:read"


class OrgService(kit.ServiceKit):
    name = SERVICE_NAME
    public_schemas = PUBLIC_SCHEMAS
    event_schemas = EVENT_SCHEMAS

    db = Database(Base)
    outbox = Outbox(OutboxMessage)
    runtime = RuntimeProvider()

    @contextmanager
    def _unit_of_work(self) -> Iterator[UseCaseContext]:
        """One transaction for the current principal, at the time of the runtime's clock."""
        with self.db.session() as session:
            yield UseCaseContext(session, self.outbox, current_principal(), self.runtime.clock())

    @contextmanager
    def _read_only(self) -> Iterator[UseCaseContext]:
        """A read for the current principal: no transaction, no events (``db.read()``)."""
        with self.db.read() as session:
            yield UseCaseContext(session, NO_EVENTS, current_principal(), self.runtime.clock())

    # -- administration (org:admin) ---------------------------------------------------------
    @rpc
    def list_records(self, kind: str, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with self._read_only() as context:
            return Records(context, self.runtime.passwords).page(kind, query)

    @rpc
    def get_record(self, kind: str, record_id: str) -> dict[str, Any]:
        with self._read_only() as context:
            return Records(context, self.runtime.passwords).get(kind, record_id)

    @rpc
    def create_record(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        with self._unit_of_work() as context:
            return Records(context, self.runtime.passwords).create(kind, data)

    @rpc
    def update_record(
        self,
        kind: str,
        record_id: str,
        changes: dict[str, Any],
        expected_version: int | None = None,
    ) -> dict[str, Any]:
        with self._unit_of_work() as context:
            records = Records(context, self.runtime.passwords)
            return records.update(kind, record_id, changes, expected_version)

    @rpc
    def set_disabled(self, kind: str, record_id: str, disabled: bool) -> dict[str, Any]:
        with self._unit_of_work() as context:
            return Records(context, self.runtime.passwords).set_disabled(kind, record_id, disabled)

    @rpc
    def reset_password(self, user_id: str, new_password: str) -> dict[str, Any]:
        with self._unit_of_work() as context:
            return Users(context, self.runtime.passwords).reset_password(user_id, new_password)

    @rpc
    def unlock_user(self, user_id: str) -> dict[str, Any]:
        with self._unit_of_work() as context:
            return Users(context, self.runtime.passwords).unlock(user_id)

    @rpc
    def list_permissions(self) -> list[dict[str, str]]:
        with self._read_only() as context:
            return Roles(context).permissions()

    @rpc
    def audit_log(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with self._read_only() as context:
            return AuditLog(context).entries(query)

    # -- for other services ------------------------------------------------------------------
    @rpc
    def structure_snapshot(
        self, kind: str, cursor: str | None = None, limit: int | None = None
    ) -> dict[str, Any]:
        with self._read_only() as context:
            return Structure(context).snapshot(kind, cursor, limit)

    # -- sign-in ----------------------------------------------------------------------------
    @rpc
    @public
    @not_idempotent  # refusals are written in transactions of their own
    def sign_in(self, username: str, password: str) -> dict[str, Any]:
        return SignIn(self.db, self.outbox, self.runtime).sign_in(username, password)

    @rpc
    @public
    @not_idempotent  # refusals are written in transactions of their own
    def refresh(self, refresh_token: str) -> dict[str, Any]:
        return SignIn(self.db, self.outbox, self.runtime).refresh(refresh_token)

    @rpc
    @public
    @not_idempotent  # refusals are written in transactions of their own
    def sign_out(self, refresh_token: str) -> None:
        SignIn(self.db, self.outbox, self.runtime).sign_out(refresh_token)

    @rpc
    def revocation_state(self) -> dict[str, Any]:
        """What a starting gateway must refuse: see ``org.application.sessions``. Only for the
        service identities that may read sessions (the gateway's)."""
        current_principal().require(SESSIONS_READ)
        with self.db.session() as session:
            return revocation_state(
                session, self.runtime.clock(), self.runtime.trust.ttl + self.runtime.trust.leeway
            )

    @rpc
    def describe_me(self) -> dict[str, Any]:
        return Account(self.db, self.outbox, self.runtime).describe(current_principal())

    @rpc
    def change_password(
        self, current_password: str, new_password: str, session_id: str | None = None
    ) -> dict[str, Any]:
        return Account(self.db, self.outbox, self.runtime).change_password(
            current_principal(), current_password, new_password, session_id
        )
