"""Deliveries by email and SMS: what the rules hand over (:func:`enqueue`), and what an admin
does with them (search, look at one with its attempts, retry a failed one), and the providers'
delivery receipts.

``enqueue`` stores one delivery in the caller's transaction; the delivery worker
(``notify.application.sending``) sends it after commit. Before storing it decides:

* a second message with the same ``dedup_key`` on the same channel is not stored (None);
* a daily-digest message (``digest`` and not critical) is held in the recipient's digest of
  the day, which leaves when their quiet hours end;
* beyond the rate limit (``RateLimit``: N per recipient and channel in a window) a message is
  folded into one summary that leaves at the end of the window: a storm of 500 events is a few
  SMS and one summary, not 500;
* a non-critical message in the recipient's quiet hours waits for their end; a marketing SMS
  waits for 08:00–21:00 and carries the opt-out text.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy.orm import Session

from crm_common.application import UseCases
from crm_common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from crm_common.ids import lookup_id
from crm_common.phones import normalize_mobile
from crm_common.reads import RowDumper
from crm_common.schemas import load
from notify.channels import Receipt
from notify.domain import delivery as rules
from notify.models.deliveries import Delivery, DeliveryReceipt
from notify.repository import deliveries as repository
from notify.schemas.deliveries import (
    DeliveryAttemptSchema,
    DeliveryQuerySchema,
    DeliverySchema,
)

ADMIN_PERMISSIONS = ("alerts:admin", "system:admin")
ADMIN_ROLE = "admin"
"""Who may search and retry deliveries: as for alert rules, alerts:admin or the admin role
(and operators with system:admin)."""
DELIVERY_ROWS = RowDumper(DeliverySchema())
ATTEMPT_ROWS = RowDumper(DeliveryAttemptSchema())


@dataclass(frozen=True)
class Recipient:
    user_id: str
    name: str
    email: str | None
    mobile: str | None  # 11-digit mainland mobile (crm_common.phones.normalize_mobile)
    time_zone: str = rules.DEFAULT_TIME_ZONE
    quiet_start: time = rules.DEFAULT_QUIET_START
    quiet_end: time = rules.DEFAULT_QUIET_END


@dataclass(frozen=True)
class OutgoingMessage:
    subject: str  # email subject / SMS summary line
    text: str  # plain text body (email text part; SMS text for the webhook adapter)
    html: str | None  # email HTML part (None: derived from text)
    sms_template: str | None  # provider template code/id (Aliyun TemplateCode / Tencent TemplateId)
    sms_params: dict[str, str] = field(default_factory=dict)  # ordered; Tencent uses the order
    link: str | None = None  # link to the record in the front end, if any


@dataclass
class DeliverySettings:
    """The limits ``enqueue`` applies; the service sets them from its config at start."""

    rate_limit: rules.RateLimit = field(default_factory=rules.RateLimit)
    summary_template: str | None = None
    """The SMS template (code or id) of a storm's summary and the daily digest, for the
    template-based providers; its parameters are ``count`` and ``first``."""


SETTINGS = DeliverySettings()


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def enqueue(
    session: Session,
    *,
    recipient: Recipient,
    channel: str,
    message: OutgoingMessage,
    alert_type: str,
    rule_id: uuid.UUID | None,
    dedup_key: str,
    severity: str,
    critical: bool,
    kind: str = rules.ALERT,
    digest: bool = False,
    now: datetime,
) -> uuid.UUID | None:
    """Store one delivery of ``message`` to ``recipient`` on ``channel`` (``email`` or
    ``sms``) in the caller's transaction; None when ``dedup_key`` was already used there."""
    if channel not in rules.CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    if kind not in (rules.ALERT, rules.MARKETING):
        raise ValueError(f"unknown kind {kind!r}")
    now = _utc(now)
    if repository.dedup_taken(session, channel, dedup_key):
        return None
    critical = critical and kind != rules.MARKETING
    address = recipient.email if channel == rules.EMAIL else recipient.mobile
    unusable = None
    if address and channel == rules.SMS:
        try:
            address = normalize_mobile(address)
        except ValueError:
            unusable = f"{address[:40]!r} is not a mainland mobile number"
    text = message.text
    if kind == rules.MARKETING and channel == rules.SMS:
        text = rules.with_opt_out(text)
    row = Delivery(
        id=uuid.uuid4(),
        channel=channel,
        kind=kind,
        status=rules.QUEUED,
        recipient_id=recipient.user_id,
        recipient_name=recipient.name[:100],
        address=address,
        time_zone=recipient.time_zone,
        alert_type=alert_type,
        rule_id=rule_id,
        severity=severity,
        critical=critical,
        dedup_key=dedup_key,
        subject=message.subject[:300],
        text=text,
        html=message.html,
        sms_template=message.sms_template,
        sms_params=dict(message.sms_params),
        link=message.link,
        not_before=now,
        attempts=0,
        created_at=now,
        updated_at=now,
    )
    if not address or unusable:
        row.status = rules.FAILED
        row.failed_at = now
        row.last_error = unusable or (
            f"the recipient has no {'email address' if channel == 'email' else 'mobile'}"
        )
    elif digest and not critical:
        row.status = rules.BUNDLED
        row.bundle_id = _bundle(session, row, rules.DIGEST, now, recipient).id
    elif not SETTINGS.rate_limit.admits(
        repository.individually_sent_since(
            session, recipient.user_id, channel, SETTINGS.rate_limit.window_start(now)
        )
    ):
        row.status = rules.BUNDLED
        row.bundle_id = _bundle(session, row, rules.SUMMARY, now, recipient).id
    else:
        row.not_before = _earliest(row, now, recipient)
    session.add(row)
    session.flush()
    return row.id


def _earliest(row: Delivery, moment: datetime, recipient: Recipient) -> datetime:
    return rules.earliest_send(
        moment,
        channel=row.channel,
        kind=row.kind,
        critical=row.critical,
        time_zone=recipient.time_zone,
        quiet_start=recipient.quiet_start,
        quiet_end=recipient.quiet_end,
    )


def _bundle(
    session: Session, member: Delivery, kind: str, now: datetime, recipient: Recipient
) -> Delivery:
    """The recipient's open summary or digest on the member's channel, made when there is
    none: a summary leaves at the end of the rate-limit window (after quiet hours unless a
    member is critical), a digest when the recipient's quiet hours end."""
    bundle = repository.open_bundle(session, member.recipient_id, member.channel, kind)
    if bundle is not None:
        if member.critical and not bundle.critical:
            bundle.critical = True
            bundle.not_before = min(_utc(bundle.not_before), now + SETTINGS.rate_limit.window)
        return bundle
    if kind == rules.DIGEST:
        leaves = rules.digest_due(now, recipient.time_zone, recipient.quiet_end)
        key = f"digest:{member.recipient_id}:{rules.digest_day(leaves, recipient.time_zone)}"
    else:
        leaves = now + SETTINGS.rate_limit.window
        key = f"summary:{member.recipient_id}:{now.isoformat()}"
    bundle = Delivery(
        id=uuid.uuid4(),
        channel=member.channel,
        kind=kind,
        status=rules.QUEUED,
        recipient_id=member.recipient_id,
        recipient_name=member.recipient_name,
        address=member.address,
        time_zone=member.time_zone,
        alert_type=kind,
        rule_id=None,
        severity=member.severity,
        critical=member.critical and kind == rules.SUMMARY,
        dedup_key=key,
        subject="",
        text="",
        sms_template=SETTINGS.summary_template,
        sms_params={},
        not_before=leaves,
        attempts=0,
        created_at=now,
        updated_at=now,
    )
    if not bundle.critical:
        bundle.not_before = _earliest(bundle, leaves, recipient)
    session.add(bundle)
    session.flush()
    return bundle


class Deliveries(UseCases):
    """The admin's view of deliveries, and the providers' receipts."""

    def _require_admin(self) -> None:
        principal = self.principal
        if ADMIN_ROLE not in principal.roles and not any(
            principal.can(code) for code in ADMIN_PERMISSIONS
        ):
            raise Forbidden(
                "this needs the permission alerts:admin",
                {"permission": ADMIN_PERMISSIONS[0]},
            )

    def search(self, query: dict[str, Any] | None) -> dict[str, Any]:
        self._require_admin()
        values = load(DeliveryQuerySchema(), query or {})
        created_from = values.pop("created_from", None)
        created_to = values.pop("created_to", None)
        cursor = values.pop("cursor", None)
        limit = values.pop("limit", None)
        page = repository.delivery_page(
            self.session,
            values,
            _utc(created_from) if created_from else None,
            _utc(created_to) if created_to else None,
            cursor,
            limit,
        )
        return {"items": DELIVERY_ROWS.dump_all(page.items), "next_cursor": page.next_cursor}

    def get(self, delivery_id: Any) -> dict[str, Any]:
        self._require_admin()
        identifier = known_id(delivery_id)
        record = DELIVERY_ROWS.dump(repository.delivery_row(self.session, identifier))
        record["attempt_log"] = ATTEMPT_ROWS.dump_all(
            repository.attempt_rows(self.session, identifier)
        )
        return record

    def retry(self, delivery_id: Any) -> dict[str, Any]:
        """Queue a failed delivery again, now, with a fresh count of attempts."""
        self._require_admin()
        identifier = known_id(delivery_id)
        row = repository.get_for_update(self.session, identifier)
        if row.status != rules.FAILED:
            raise Conflict(
                f"only a failed delivery can be retried; this one is {row.status}",
                {"reason": "not_failed", "status": row.status},
            )
        if not row.address:
            raise Conflict("the delivery has no address to send to", {"reason": "no_address"})
        row.status = rules.QUEUED
        row.not_before = self.context.now
        row.attempts = 0
        row.failed_at = None
        row.lease_until = None
        row.updated_at = self.context.now
        self.session.flush()
        return self.get(identifier)

    def receive_receipts(self, provider: str, receipts: list[Receipt]) -> dict[str, Any]:
        """Apply the provider's reports: each message id counts once, so a report sent twice
        changes its delivery once. Unknown ids are kept too (a report may overtake the
        send's answer) and matched by the delivery id the provider echoes, if any."""
        now = self.context.now
        applied = duplicates = unmatched = 0
        for receipt in receipts:
            if repository.receipt_known(self.session, provider, receipt.provider_id):
                duplicates += 1
                continue
            row = repository.by_provider_id(self.session, provider, receipt.provider_id)
            if row is None and receipt.delivery_id:
                try:
                    row = self.session.get(Delivery, uuid.UUID(receipt.delivery_id))
                except ValueError:
                    row = None
            status = rules.DELIVERED if receipt.delivered else rules.FAILED
            self.session.add(
                DeliveryReceipt(
                    provider=provider,
                    provider_id=receipt.provider_id,
                    delivery_id=row.id if row is not None else None,
                    status=status,
                    detail=(receipt.detail or None) and receipt.detail[:500],
                    received_at=now,
                )
            )
            if row is None:
                unmatched += 1
                continue
            applied += 1
            if row.status in rules.FINAL_STATUSES:
                continue
            row.status = status
            row.provider_id = row.provider_id or receipt.provider_id
            row.updated_at = now
            if receipt.delivered:
                row.delivered_at = now
            else:
                row.failed_at = now
                row.last_error = (f"{provider} report: {receipt.detail or 'not delivered'}")[:500]
        self.session.flush()
        return {"applied": applied, "duplicates": duplicates, "unmatched": unmatched}


def check_receipt_token(expected: str, given: Any) -> None:
    """Receipts come from the provider, not a user: they carry the shared token of
    ``SMS_RECEIPT_TOKEN``. Without one configured every receipt is refused."""
    if not expected or not isinstance(given, str) or not hmac.compare_digest(expected, given):
        raise Forbidden("the receipt token is missing or wrong", {"reason": "receipt_token"})


def receipt_body(body: Any) -> Any:
    if not isinstance(body, list | dict):
        raise ValidationFailed.on("_schema", "a receipt is a JSON object or array")
    return body


def known_id(delivery_id: Any) -> uuid.UUID:
    """A delivery id as a UUID; one that is not even well formed names no delivery (404)."""
    identifier = lookup_id(delivery_id)
    if identifier is None:
        raise NotFound.of("delivery", delivery_id)
    return identifier
