"""The role codes of people's users (whom a ``role`` recipient names); org's people snapshot is
read again, so that people copied before it carried role codes get theirs.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "person_roles",
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("role_code", sa.String(length=50), nullable=False),
        sa.PrimaryKeyConstraint("person_id", "role_code"),
    )
    op.create_index("ix_person_roles_role_code", "person_roles", ["role_code"])
    op.execute("DELETE FROM catch_ups WHERE source = 'org.people'")


def downgrade() -> None:
    op.drop_index("ix_person_roles_role_code", table_name="person_roles")
    op.drop_table("person_roles")
