"""The org service: thin Nameko RPC entrypoints over ``org.application`` and ``org.accounts``."""

from __future__ import annotations

from typing import Any

from nameko.rpc import rpc

from crm_common import kit
from crm_common.context import current_principal
from crm_common.db import Database
from crm_common.errors import EXPECTED_ERRORS
from crm_common.outbox import Outbox
from org.accounts import Accounts
from org.application import OrgAdmin
from org.events import EVENT_SCHEMAS
from org.models import Base, OutboxMessage
from org.runtime import RuntimeProvider
from org.schemas import PUBLIC_SCHEMAS

SERVICE_NAME = "org"


class OrgService(kit.ServiceKit):
    name = SERVICE_NAME
    public_schemas = PUBLIC_SCHEMAS
    event_schemas = EVENT_SCHEMAS

    db = Database(Base)
    outbox = Outbox(OutboxMessage)
    runtime = RuntimeProvider()

    def _admin(self, session: Any) -> OrgAdmin:
        return OrgAdmin(session, self.outbox, current_principal(), self.runtime)

    def _accounts(self) -> Accounts:
        return Accounts(self.db, self.outbox, self.runtime)

    # -- administration (org:admin) ---------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_records(self, kind: str, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with self.db.session() as session:
            return self._admin(session).list_records(kind, query)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_record(self, kind: str, record_id: str) -> dict[str, Any]:
        with self.db.session() as session:
            return self._admin(session).get_record(kind, record_id)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def create_record(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        with self.db.session() as session:
            return self._admin(session).create_record(kind, data)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def update_record(
        self,
        kind: str,
        record_id: str,
        changes: dict[str, Any],
        expected_version: int | None = None,
    ) -> dict[str, Any]:
        with self.db.session() as session:
            return self._admin(session).update_record(kind, record_id, changes, expected_version)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def set_disabled(self, kind: str, record_id: str, disabled: bool) -> dict[str, Any]:
        with self.db.session() as session:
            return self._admin(session).set_disabled(kind, record_id, disabled)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def reset_password(self, user_id: str, new_password: str) -> dict[str, Any]:
        with self.db.session() as session:
            return self._admin(session).reset_password(user_id, new_password)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def unlock_user(self, user_id: str) -> dict[str, Any]:
        with self.db.session() as session:
            return self._admin(session).unlock_user(user_id)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_permissions(self) -> list[dict[str, str]]:
        with self.db.session() as session:
            return self._admin(session).list_permissions()

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def audit_log(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with self.db.session() as session:
            return self._admin(session).audit_log(query)

    # -- sign-in ----------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def sign_in(self, username: str, password: str) -> dict[str, Any]:
        return self._accounts().sign_in(username, password)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def refresh(self, refresh_token: str) -> dict[str, Any]:
        return self._accounts().refresh(refresh_token)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def sign_out(self, refresh_token: str) -> None:
        self._accounts().sign_out(refresh_token)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def describe_me(self) -> dict[str, Any]:
        return self._accounts().describe_me(current_principal())

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def change_password(
        self, current_password: str, new_password: str, session_id: str | None = None
    ) -> dict[str, Any]:
        return self._accounts().change_password(
            current_principal(), current_password, new_password, session_id
        )
