"""Who is calling: the bearer token of a request, verified locally, as a principal."""

from __future__ import annotations

from werkzeug.wrappers import Request

from crm_common.context import Principal
from gateway.problems import unauthenticated
from gateway.tokens import InvalidToken, TokenSettings, verify


def bearer_token(request: Request) -> str:
    header = request.headers.get("Authorization")
    if header is None or not header.strip():
        raise unauthenticated("this resource needs a bearer token", error=None)
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthenticated(
            "send the token as 'Authorization: Bearer <token>'", error="invalid_request"
        )
    return token.strip()


def authenticate(request: Request, token_settings: TokenSettings) -> Principal:
    try:
        claims = verify(token_settings, bearer_token(request))
    except InvalidToken as exc:
        raise unauthenticated(exc.reason) from None
    department = claims.get("department_id")
    roles = claims.get("roles")
    return Principal(
        user_id=claims["sub"],
        department_id=department if isinstance(department, str) else None,
        roles=tuple(str(role) for role in roles) if isinstance(roles, list) else (),
    )
