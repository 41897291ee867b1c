"""The HTTP gateway: each route turns one HTTP request into one RPC on a backend service.

The backend services' routes come from their route tables (``gateway.routes``); the routes
here are the gateway's own: operations, sign-in and passwords (tokens are minted and passwords
validated here), the dead letters of every service, and the customer overview answered from
several services at once (``gateway.aggregates``). Sign-in turns an org session into a
signed access token (``gateway.auth``); the org events that outdate tokens are heard here and
kept in the revocation list the routes check.
"""

from __future__ import annotations

import contextvars
from typing import Any

import eventlet
from nameko.dependency_providers import Config
from werkzeug.wrappers import Request, Response

from crm_common.context import CallContext
from crm_common.errors import Unauthenticated
from crm_common.metrics import Metrics
from crm_common.runtime import CollectorTuning
from gateway import aggregates, dead_letters, openapi, parsing, readiness, routes, settings
from gateway.auth import Tokens
from gateway.entrypoints import broadcast_handler
from gateway.http_policy import client_address, trusted_networks
from gateway.responses import json_response, no_content
from gateway.routes.org import ADMIN_NOTE
from gateway.rpc import ServiceRpc
from gateway.schemas import (
    PasswordChangeSchema,
    PasswordResetSchema,
    RefreshRequestSchema,
    TokenRequestSchema,
)
from gateway.table import install
from gateway.web import CALLER_ENVIRON, api_routes, route

OPERATIONS = ["operations"]
AUTH = ["auth"]
ORG = ["org"]
ADMIN = ["admin"]
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
NO_STORE_DOC = {"Cache-Control": "no-store: token responses must not be cached"}
DEAD_LETTER = "/api/admin/dead-letters/<service>/<dead_letter_id>"
DEAD_LETTER_NOTE = (
    "Needs the permission system:admin. Dead letters are the events a service's handler gave "
    "up on after its last retry."
)


class GatewayService:
    """The gateway's own routes; the services' route tables are installed below the class."""

    name = "gateway"

    context = CallContext()
    config = Config()
    metrics = Metrics()
    collector = CollectorTuning()
    tokens = Tokens()
    backends = ServiceRpc()
    org = ServiceRpc("org")
    schema_cache = openapi.SchemaCache()

    # operations -------------------------------------------------------------------------

    @route(
        "GET",
        "/health",
        auth=False,
        pooled=False,
        summary="The gateway process is up",
        tags=OPERATIONS,
        shape="object",
        response="gateway.Health",
    )
    def health(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    @route(
        "GET",
        "/ready",
        auth=False,
        pooled=False,
        summary="The broker is reachable, every service answers a ping and the revocation "
        "state is loaded",
        description="Not ready (503, check 'revocations': 'loading') while the gateway is still "
        "loading org's revocation state at start: until then it refuses tokens issued before it "
        "started.",
        tags=OPERATIONS,
        shape="object",
        response="gateway.Readiness",
    )
    def ready(self, request: Request) -> Response:
        timeout = settings.ready_timeout(self.config)
        proxies = {
            name: self.backends.for_service(name).with_timeout(timeout)
            for name in settings.backend_services(self.config)
        }
        checks = readiness.check(self.config["AMQP_URI"], proxies, timeout)
        checks["revocations"] = readiness.revocations_status(self.tokens)
        status, body = readiness.summary(checks)
        return json_response(body, status)

    @route(
        "GET",
        "/api/openapi.json",
        auth=False,
        summary="This API's OpenAPI 3.1 document",
        tags=OPERATIONS,
        shape="object",
        errors=(503, 504),
    )
    def openapi_document(self, request: Request) -> Response:
        pool = eventlet.GreenPool()
        pending = {
            name: pool.spawn(
                contextvars.copy_context().run,
                self.schema_cache.schemas_of,
                name,
                self.backends.for_service(name).api_schemas,
            )
            for name in settings.backend_services(self.config)
        }
        schemas = {name: thread.wait() for name, thread in pending.items()}
        return json_response(openapi.build_document(api_routes(type(self)), schemas))

    # sign-in ----------------------------------------------------------------------------

    @route(
        "POST",
        "/api/auth/token",
        auth=False,
        summary="Sign in with a username and password",
        description="A wrong username, a wrong password and a disabled user all answer the "
        "same 401. Refusals in a row make further sign-ins wait, answered 429 with "
        "Retry-After: longest for one client trying one username, short for a username "
        "tried from anywhere, and for a client refused too often within a window.",
        tags=AUTH,
        body="gateway.TokenRequest",
        shape="object",
        response="gateway.TokenResponse",
        headers=NO_STORE_DOC,
        errors=(401, 429, 503, 504),
    )
    def sign_in(self, request: Request) -> Response:
        credentials = parsing.validated(TokenRequestSchema(), request)
        username = credentials["username"]
        address = client_address(request, trusted_networks(self.config.get("TRUSTED_PROXIES")))
        self.tokens.check_sign_in_allowed(address, username)
        try:
            session = self.org.sign_in(username, credentials["password"])
        except Unauthenticated:
            self.tokens.sign_ins.refused(address, username)
            raise
        self.tokens.sign_ins.succeeded(address, username)
        return json_response(self.tokens.issue(session), headers=NO_STORE)

    @route(
        "POST",
        "/api/auth/refresh",
        auth=False,
        summary="Renew the access token; the refresh token is replaced by a new one",
        description="A refresh token works once. Presenting one that was already used ends "
        "the whole session (it may have been stolen): sign in again.",
        tags=AUTH,
        body="gateway.RefreshRequest",
        shape="object",
        response="gateway.TokenResponse",
        headers=NO_STORE_DOC,
        errors=(401, 503, 504),
    )
    def refresh(self, request: Request) -> Response:
        body = parsing.validated(RefreshRequestSchema(), request)
        session = self.org.refresh(body["refresh_token"])
        return json_response(self.tokens.issue(session), headers=NO_STORE)

    @route(
        "POST",
        "/api/auth/logout",
        auth=False,
        summary="Sign out: end the session of the refresh token (and of the bearer token sent)",
        tags=AUTH,
        body="gateway.RefreshRequest",
        shape="none",
        status=204,
        errors=(503, 504),
    )
    def logout(self, request: Request) -> Response:
        body = parsing.validated(RefreshRequestSchema(), request)
        self.tokens.end_presented_session(request)
        self.org.sign_out(body["refresh_token"])
        return no_content()

    @route(
        "GET",
        "/api/me",
        summary="The caller: user, person, department, roles, permissions and data grants",
        tags=AUTH,
        shape="object",
        response="org.Me",
    )
    def describe_me(self, request: Request) -> Response:
        return json_response(self.org.describe_me())

    @route(
        "POST",
        "/api/me/password",
        summary="Change the caller's password; the caller's other sessions end",
        tags=AUTH,
        body="gateway.PasswordChange",
        shape="none",
        status=204,
    )
    def change_password(self, request: Request) -> Response:
        body = parsing.validated(PasswordChangeSchema(), request)
        caller = request.environ[CALLER_ENVIRON]
        self.org.change_password(
            body["current_password"], body["new_password"], session_id=caller.session_id
        )
        return no_content()

    @broadcast_handler("org", "grants_changed")
    def on_grants_changed(self, envelope: dict[str, Any]) -> None:
        self.tokens.revocations.heard("grants_changed", envelope)

    @broadcast_handler("org", "user_changed")
    def on_user_changed(self, envelope: dict[str, Any]) -> None:
        self.tokens.revocations.heard("user_changed", envelope)

    @broadcast_handler("org", "session_revoked")
    def on_session_revoked(self, envelope: dict[str, Any]) -> None:
        self.tokens.revocations.heard("session_revoked", envelope)

    # org administration (besides the routes of OrgAdminRoutes) --------------------------

    @route(
        "POST",
        "/api/org/users/<user_id>/password",
        summary="Set a user's password (administrator reset); the user's sessions end",
        description=ADMIN_NOTE,
        tags=ORG,
        body="gateway.PasswordReset",
        shape="none",
        status=204,
    )
    def reset_password(self, request: Request, user_id: str) -> Response:
        body = parsing.validated(PasswordResetSchema(), request)
        self.org.reset_password(user_id, body["new_password"])
        return no_content()

    # aggregates of several services -------------------------------------------------------

    @route(
        "GET",
        "/api/customers/<customer_id>/overview",
        summary=aggregates.OVERVIEW_SUMMARY,
        description=aggregates.OVERVIEW_DESCRIPTION,
        tags=["customers"],
        shape="object",
        response=aggregates.OVERVIEW_SCHEMA,
    )
    def customer_overview(self, request: Request, customer_id: str) -> Response:
        return json_response(aggregates.customer_overview(self.backends, customer_id))

    # dead letters of every service --------------------------------------------------------

    def _dead_letters_of(self, service: str) -> Any:
        backends = settings.backend_services(self.config)
        return self.backends.for_service(dead_letters.chosen_service(service, backends))

    @route(
        "GET",
        "/api/admin/dead-letters",
        summary="The dead letters of one service, or of every service",
        description=DEAD_LETTER_NOTE + " Without `service`, `limit` applies to each service "
        "and the cursor carries on where each one stopped.",
        tags=ADMIN,
        params=("service", "handler", "event_type", "cursor", "limit"),
        shape="page",
        response="gateway.DeadLetter",
        errors=(404,),
    )
    def list_dead_letters(self, request: Request) -> Response:
        return json_response(
            dead_letters.list_all(
                parsing.query_dict(request.args),
                settings.backend_services(self.config),
                lambda service, query: self.backends.for_service(service).list_dead_letters(query),
            )
        )

    @route(
        "GET",
        DEAD_LETTER,
        summary="A dead letter with its message, the error and the handler that gave up",
        description=DEAD_LETTER_NOTE,
        tags=ADMIN,
        shape="object",
        response="gateway.DeadLetterDetail",
    )
    def get_dead_letter(self, request: Request, service: str, dead_letter_id: str) -> Response:
        return json_response(self._dead_letters_of(service).get_dead_letter(dead_letter_id))

    @route(
        "POST",
        f"{DEAD_LETTER}/replay",
        summary="Send a dead letter back to its handler, with fresh retries",
        description=DEAD_LETTER_NOTE + " The handler's inbox makes replaying an event it has "
        "already applied harmless.",
        tags=ADMIN,
        shape="object",
        response="gateway.DeadLetterReplay",
    )
    def replay_dead_letter(self, request: Request, service: str, dead_letter_id: str) -> Response:
        return json_response(self._dead_letters_of(service).replay_dead_letter(dead_letter_id))

    @route(
        "DELETE",
        DEAD_LETTER,
        summary="Discard a dead letter for good",
        description=DEAD_LETTER_NOTE,
        tags=ADMIN,
        shape="none",
        status=204,
    )
    def discard_dead_letter(self, request: Request, service: str, dead_letter_id: str) -> Response:
        self._dead_letters_of(service).discard_dead_letter(dead_letter_id)
        return no_content()


install(GatewayService, routes.tables())
