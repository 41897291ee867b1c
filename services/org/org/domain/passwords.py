"""The password policy: what a new password must meet, and what a change of one must."""

from __future__ import annotations

import re
from typing import Any

from crm_common.errors import ValidationFailed

MIN_LENGTH = 8
MAX_LENGTH = 128


def policy_problems(password: str, username: str | None = None) -> list[str]:
    """Why ``password`` is not acceptable as a new password (empty when it is)."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"must be at least {MIN_LENGTH} characters long")
    if len(password) > MAX_LENGTH:
        problems.append(f"must be at most {MAX_LENGTH} characters long")
    if not re.search(r"[^\W\d_]", password) or not re.search(r"\d", password):
        problems.append("must contain both letters and digits")
    if username and username.strip() and username.strip().lower() in password.lower():
        problems.append("must not contain the username")
    return problems


def check_new_password(password: Any, username: str | None, field: str) -> str:
    """``password`` if an administrator may set it, else ``ValidationFailed`` on ``field``."""
    if not isinstance(password, str) or not password:
        raise ValidationFailed.on(field, "is required")
    problems = policy_problems(password, username)
    if problems:
        raise ValidationFailed(f"{field}: {'; '.join(problems)}", {"errors": {field: problems}})
    return password


def change_problems(
    current_password: Any, new_password: Any, username: str
) -> dict[str, list[str]]:
    """What is wrong with a user's own change of password, by field, before checking the
    current password against its hash (empty when nothing is)."""
    errors: dict[str, list[str]] = {}
    if not isinstance(new_password, str) or not new_password:
        errors["new_password"] = ["is required"]
    else:
        problems = policy_problems(new_password, username)
        if new_password == current_password:
            problems.append("must differ from the current password")
        if problems:
            errors["new_password"] = problems
    if not isinstance(current_password, str) or not current_password:
        errors["current_password"] = ["is required"]
    return errors
