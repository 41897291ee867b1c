"""Alembic environment of the sales database (URI from the caller or $DB_URI)."""

from crm_common.migrations import run_migrations
from sales.models import Base

run_migrations(Base.metadata)
