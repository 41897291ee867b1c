"""Refresh tokens: random, opaque, and stored only as a SHA-256 digest."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_BYTES = 32


def new_refresh_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """The digest kept in the database; a leaked table gives no usable token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
