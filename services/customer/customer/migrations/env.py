"""Alembic environment of the customer database (URI from the caller or $DB_URI)."""

from crm_common.migrations import run_migrations
from customer.models import Base

run_migrations(Base.metadata)
