"""Alembic environment of the org database (URI from the caller or $DB_URI)."""

from crm_common.migrations import run_migrations
from org.models import Base

run_migrations(Base.metadata)
