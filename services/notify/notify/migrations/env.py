"""Alembic environment of the notify database (URI from the caller or $DB_URI)."""

from crm_common.migrations import run_migrations
from notify.models import Base

run_migrations(Base.metadata)
