"""Customer counts per combination of the values that scopes, counts and summaries filter on,
kept by triggers on customers, filled from the customers already there.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FILL = """INSERT INTO customer_counts (status, kind, category, region, owner_id, department_id, n)
SELECT status, kind, coalesce(category, ''), coalesce(region, ''), coalesce(owner_id, ''),
       coalesce(department_id, ''), count(*)
FROM customers GROUP BY 1, 2, 3, 4, 5, 6"""
SQLITE_TRIGGERS = (
    """CREATE TRIGGER IF NOT EXISTS customer_counts_insert AFTER INSERT ON customers
BEGIN
  INSERT INTO customer_counts (status, kind, category, region, owner_id, department_id, n)
  VALUES (NEW.status, NEW.kind, coalesce(NEW.category, ''), coalesce(NEW.region, ''),
          coalesce(NEW.owner_id, ''), coalesce(NEW.department_id, ''), 1);
END""",
    """CREATE TRIGGER IF NOT EXISTS customer_counts_delete AFTER DELETE ON customers
BEGIN
  INSERT INTO customer_counts (status, kind, category, region, owner_id, department_id, n)
  VALUES (OLD.status, OLD.kind, coalesce(OLD.category, ''), coalesce(OLD.region, ''),
          coalesce(OLD.owner_id, ''), coalesce(OLD.department_id, ''), -1);
END""",
    """CREATE TRIGGER IF NOT EXISTS customer_counts_update
AFTER UPDATE OF status, kind, category, region, owner_id, department_id ON customers
WHEN OLD.status IS NOT NEW.status OR OLD.kind IS NOT NEW.kind
  OR OLD.category IS NOT NEW.category OR OLD.region IS NOT NEW.region
  OR OLD.owner_id IS NOT NEW.owner_id OR OLD.department_id IS NOT NEW.department_id
BEGIN
  INSERT INTO customer_counts (status, kind, category, region, owner_id, department_id, n)
  VALUES (OLD.status, OLD.kind, coalesce(OLD.category, ''), coalesce(OLD.region, ''),
          coalesce(OLD.owner_id, ''), coalesce(OLD.department_id, ''), -1);
  INSERT INTO customer_counts (status, kind, category, region, owner_id, department_id, n)
  VALUES (NEW.status, NEW.kind, coalesce(NEW.category, ''), coalesce(NEW.region, ''),
          coalesce(NEW.owner_id, ''), coalesce(NEW.department_id, ''), 1);
END""",
)
POSTGRESQL_TRIGGERS = (
    """CREATE OR REPLACE FUNCTION customer_counts_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO customer_counts (status, kind, category, region, owner_id, department_id, n)
  SELECT status, kind, coalesce(category, ''), coalesce(region, ''), coalesce(owner_id, ''),
         coalesce(department_id, ''), count(*)
  FROM new_rows GROUP BY 1, 2, 3, 4, 5, 6;
  RETURN NULL;
END
$$""",
    """CREATE OR REPLACE FUNCTION customer_counts_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO customer_counts (status, kind, category, region, owner_id, department_id, n)
  SELECT status, kind, coalesce(category, ''), coalesce(region, ''), coalesce(owner_id, ''),
         coalesce(department_id, ''), -count(*)
  FROM old_rows GROUP BY 1, 2, 3, 4, 5, 6;
  RETURN NULL;
END
$$""",
    """CREATE OR REPLACE FUNCTION customer_counts_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO customer_counts (status, kind, category, region, owner_id, department_id, n)
  SELECT status, kind, coalesce(category, ''), coalesce(region, ''), coalesce(owner_id, ''),
         coalesce(department_id, ''), sum(n)
  FROM (SELECT status, kind, category, region, owner_id, department_id, -1 AS n FROM old_rows
        UNION ALL
        SELECT status, kind, category, region, owner_id, department_id, 1 FROM new_rows) AS moved
  GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(n) <> 0;
  RETURN NULL;
END
$$""",
    """CREATE OR REPLACE FUNCTION customer_counts_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM customer_counts;
  RETURN NULL;
END
$$""",
    """CREATE OR REPLACE TRIGGER customer_counts_insert AFTER INSERT ON customers
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION customer_counts_inserted()""",
    """CREATE OR REPLACE TRIGGER customer_counts_delete AFTER DELETE ON customers
REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION customer_counts_deleted()""",
    """CREATE OR REPLACE TRIGGER customer_counts_update AFTER UPDATE ON customers
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION customer_counts_updated()""",
    """CREATE OR REPLACE TRIGGER customer_counts_truncate AFTER TRUNCATE ON customers
FOR EACH STATEMENT EXECUTE FUNCTION customer_counts_truncated()""",
)
SQLITE_DROPS = tuple(
    f"DROP TRIGGER IF EXISTS customer_counts_{change}" for change in ("insert", "delete", "update")
)
POSTGRESQL_DROPS = (
    *(
        f"DROP TRIGGER IF EXISTS customer_counts_{change} ON customers"
        for change in ("insert", "delete", "update", "truncate")
    ),
    *(
        f"DROP FUNCTION IF EXISTS customer_counts_{change}()"
        for change in ("inserted", "deleted", "updated", "truncated")
    ),
)


def upgrade() -> None:
    op.create_table(
        "customer_counts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("category", sa.String(length=10), nullable=False),
        sa.Column("region", sa.String(length=100), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("department_id", sa.String(length=64), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute(
            "LOCK TABLE customers IN SHARE MODE"
        )  # no write between the fill and the triggers
    op.execute(FILL)
    for statement in POSTGRESQL_TRIGGERS if postgresql else SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRESQL_DROPS if postgresql else SQLITE_DROPS:
        op.execute(statement)
    op.drop_table("customer_counts")
