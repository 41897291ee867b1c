"""The notify service's senders: SMTP for email, an HTTP adapter per SMS provider.

Adapters speak to the outside world and nothing else: they take an :class:`Outgoing` message,
answer with :class:`Sent`, and raise ``notify.domain.delivery``'s failures
(``TransientFailure``, ``PermanentFailure``, ``UncertainOutcome``). The delivery worker
(``notify.application.sending``) decides what happens next."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Outgoing:
    """One message as a sender sees it."""

    delivery_id: str
    address: str
    recipient_name: str
    subject: str
    text: str
    html: str | None = None
    sms_template: str | None = None
    sms_params: dict[str, str] = field(default_factory=dict)
    link: str | None = None
    kind: str = "alert"
    created_at: datetime | None = None
    first_sent_at: datetime | None = None
    """When the first try left (for a provider's look-up after a timeout)."""


@dataclass(frozen=True)
class Sent:
    provider: str
    provider_id: str | None


@dataclass(frozen=True)
class Receipt:
    """A provider's report on one message: delivered or not, by its message id (and, where
    the provider echoes it, the delivery id we sent as OutId / SessionContext)."""

    provider_id: str
    delivered: bool
    detail: str | None = None
    delivery_id: str | None = None


class Sender(Protocol):
    provider: str

    def send(self, message: Outgoing) -> Sent:
        """Hand the message over; a failure is raised as a ``DeliveryFailure``."""
        ...

    def lookup(self, message: Outgoing) -> Sent | None:
        """Whether an earlier try of this message reached the provider (after a timeout):
        what it answered, or None when it did not arrive or the provider cannot tell."""
        ...

    def close(self) -> None: ...
