"""Who a care record says did the caring: the caller, unless they may record for others."""

from __future__ import annotations

from crm_common.errors import ValidationFailed

CARE_ON_BEHALF = "customer:care-on-behalf"


def care_recorder(named: str | None, caller: str, may_record_for_others: bool) -> str:
    """The ``by_user_id`` of a new care record: the caller when none is named; another user
    only for a caller holding ``customer:care-on-behalf`` (a manager logging a visit their
    salesperson made), else ``ValidationFailed`` on the field."""
    if not named or named == caller:
        return caller
    if not may_record_for_others:
        raise ValidationFailed.on(
            "by_user_id", f"may only name yourself; recording for others needs {CARE_ON_BEHALF}"
        )
    return named
