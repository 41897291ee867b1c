"""The notify database: outbox, inbox and the stored answers of keyed writes.

Revision ID: 0001
Revises:
Create Date: 2026-12-02 10:08:55
"""

from collections.abc import Sequence

from alembic import op

from crm_common.migrations import (
    create_idempotency_table,
    create_inbox_table,
    create_outbox_table,
    drop_idempotency_table,
    drop_inbox_table,
    drop_outbox_table,
)

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_outbox_table(op)
    create_inbox_table(op)
    create_idempotency_table(op)


def downgrade() -> None:
    drop_idempotency_table(op)
    drop_inbox_table(op)
    drop_outbox_table(op)
