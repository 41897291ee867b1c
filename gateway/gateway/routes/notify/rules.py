"""Routes of alert rules (消息预警), the caller's inbox and notification preferences."""

from __future__ import annotations

from gateway.table import Body, Changes, Path, Query, Row, Version

RULE = Path("rule_id")
REVISION = Path("revision")
ITEM = Path("item_id")
RULES = ("alert rules",)
INBOX = ("inbox",)
PREFERENCES = ("notification preferences",)
ADMIN = "Needs alerts:admin (or the admin role)."
VERSIONED = "(optimistic locking: If-Match or body version)"


def rule_rows() -> tuple[Row, ...]:
    return (
        Row(
            "GET",
            "/api/alerts/rules",
            "list_alert_rules",
            (Query(),),
            summary="List alert rules, by code",
            description=ADMIN,
            tags=RULES,
            shape="page",
            response="AlertRule",
            query="AlertRuleQuery",
        ),
        Row(
            "POST",
            "/api/alerts/rules",
            "create_alert_rule",
            (Body(),),
            summary="Create an alert rule: trigger (event or schedule), condition, recipients, "
            "channels with their templates, severity",
            description=f"A condition or template that cannot be used is a 422 naming the field "
            f"(conditions.all.1.op). {ADMIN}",
            tags=RULES,
            body="AlertRuleInput",
            response="AlertRule",
            status=201,
            location="/api/alerts/rules/{id}",
            errors=(409,),
        ),
        Row(
            "GET",
            "/api/alerts/rules/<rule_id>",
            "get_alert_rule",
            (RULE,),
            summary="Get an alert rule as it is now",
            description=ADMIN,
            tags=RULES,
            response="AlertRule",
        ),
        Row(
            "PUT",
            "/api/alerts/rules/<rule_id>",
            "update_alert_rule",
            (RULE, Changes()),
            {"expected_version": Version()},
            summary=f"Replace an alert rule's definition (all but its code): a new revision "
            f"{VERSIONED}",
            description=ADMIN,
            tags=RULES,
            body="AlertRuleUpdate",
            response="AlertRule",
        ),
        Row(
            "DELETE",
            "/api/alerts/rules/<rule_id>",
            "delete_alert_rule",
            (RULE,),
            {"expected_version": Version()},
            summary=f"Delete an alert rule with its revisions {VERSIONED}",
            description=f"A built-in rule is a 409: disable it instead. {ADMIN}",
            tags=RULES,
            shape="none",
            errors=(409,),
        ),
        Row(
            "POST",
            "/api/alerts/rules/<rule_id>/enable",
            "enable_alert_rule",
            (RULE,),
            {"expected_version": Version()},
            summary=f"Enable an alert rule: a new revision {VERSIONED}",
            description=ADMIN,
            tags=RULES,
            response="AlertRule",
        ),
        Row(
            "POST",
            "/api/alerts/rules/<rule_id>/disable",
            "disable_alert_rule",
            (RULE,),
            {"expected_version": Version()},
            summary=f"Disable an alert rule: a new revision {VERSIONED}",
            description=ADMIN,
            tags=RULES,
            response="AlertRule",
        ),
        Row(
            "GET",
            "/api/alerts/rules/<rule_id>/versions",
            "alert_rule_versions",
            (RULE,),
            summary="Every saved revision of an alert rule, the newest first",
            description=ADMIN,
            tags=RULES,
            shape="object",
            response="AlertRuleVersionList",
        ),
        Row(
            "GET",
            "/api/alerts/rules/<rule_id>/versions/<revision>",
            "alert_rule_version",
            (RULE, REVISION),
            summary="One saved revision of an alert rule, as it was saved",
            description=ADMIN,
            tags=RULES,
            shape="object",
            response="AlertRuleVersion",
        ),
    )


def inbox_rows() -> tuple[Row, ...]:
    return (
        Row(
            "GET",
            "/api/inbox",
            "list_inbox",
            (Query(),),
            summary="The caller's inbox, the newest first (unread=true: only unread)",
            tags=INBOX,
            shape="page",
            response="InboxItem",
            query="InboxQuery",
        ),
        Row(
            "GET",
            "/api/inbox/unread-count",
            "inbox_unread_count",
            summary="How many of the caller's inbox items are unread",
            tags=INBOX,
            shape="object",
            response="UnreadCount",
        ),
        Row(
            "POST",
            "/api/inbox/read",
            "mark_inbox_read",
            summary="Mark every item of the caller's inbox read",
            tags=INBOX,
            shape="object",
            response="MarkedRead",
        ),
        Row(
            "POST",
            "/api/inbox/<item_id>/read",
            "mark_inbox_item_read",
            (ITEM,),
            summary="Mark one of the caller's inbox items read (another user's is a 404)",
            tags=INBOX,
            shape="object",
            response="InboxItem",
        ),
    )


def preference_rows() -> tuple[Row, ...]:
    return (
        Row(
            "GET",
            "/api/me/notification-preferences",
            "get_notification_preferences",
            summary="The caller's notification preferences (the defaults until saved)",
            tags=PREFERENCES,
            shape="object",
            response="NotificationPreferences",
        ),
        Row(
            "PUT",
            "/api/me/notification-preferences",
            "put_notification_preferences",
            (Body(),),
            summary="Replace the caller's notification preferences: per alert type (* for "
            "all) and channel on/off and immediate/daily digest; time zone and quiet hours",
            description="Send the version read (0 before the first save) to guard against "
            "a lost update: a stale one is a 409.",
            tags=PREFERENCES,
            shape="object",
            body="NotificationPreferencesInput",
            response="NotificationPreferences",
            errors=(409,),
        ),
    )


ROWS: tuple[Row, ...] = (*rule_rows(), *inbox_rows(), *preference_rows())
