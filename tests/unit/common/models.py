"""A tiny model used to exercise crm_common without any service's domain."""

from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crm_common.models import EntityMixin, InboxMixin, OutboxMixin


class Base(DeclarativeBase):
    pass


class Note(EntityMixin, Base):
    __tablename__ = "notes"

    title: Mapped[str] = mapped_column(String(100))


class OutboxMessage(OutboxMixin, Base):
    pass


class InboxEvent(InboxMixin, Base):
    pass
