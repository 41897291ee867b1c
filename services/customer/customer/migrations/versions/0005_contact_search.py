"""Customers keep their contacts' names and mobiles, kept by triggers on contacts, so that a
search looks at one row per customer; filled for the contacts already there.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10 11:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_FILL = """UPDATE customers SET
    contact_names = (SELECT group_concat(name, char(31)) FROM contacts
                     WHERE customer_id = customers.id),
    contact_mobiles = (SELECT group_concat(mobile, char(31)) FROM contacts
                       WHERE customer_id = customers.id)
  WHERE id IN (SELECT customer_id FROM contacts)"""
POSTGRESQL_FILL = SQLITE_FILL.replace("group_concat", "string_agg").replace("char(", "chr(")
SQLITE_TRIGGERS = (
    """CREATE TRIGGER IF NOT EXISTS contacts_search_insert AFTER INSERT ON contacts
BEGIN
  UPDATE customers SET
    contact_names = (SELECT group_concat(name, char(31)) FROM contacts
                     WHERE customer_id = NEW.customer_id),
    contact_mobiles = (SELECT group_concat(mobile, char(31)) FROM contacts
                       WHERE customer_id = NEW.customer_id)
  WHERE id = NEW.customer_id;
END""",
    """CREATE TRIGGER IF NOT EXISTS contacts_search_delete AFTER DELETE ON contacts
BEGIN
  UPDATE customers SET
    contact_names = (SELECT group_concat(name, char(31)) FROM contacts
                     WHERE customer_id = OLD.customer_id),
    contact_mobiles = (SELECT group_concat(mobile, char(31)) FROM contacts
                       WHERE customer_id = OLD.customer_id)
  WHERE id = OLD.customer_id;
END""",
    """CREATE TRIGGER IF NOT EXISTS contacts_search_update
AFTER UPDATE OF name, mobile, customer_id ON contacts
BEGIN
  UPDATE customers SET
    contact_names = (SELECT group_concat(name, char(31)) FROM contacts
                     WHERE customer_id = OLD.customer_id),
    contact_mobiles = (SELECT group_concat(mobile, char(31)) FROM contacts
                       WHERE customer_id = OLD.customer_id)
  WHERE id = OLD.customer_id;
  UPDATE customers SET
    contact_names = (SELECT group_concat(name, char(31)) FROM contacts
                     WHERE customer_id = NEW.customer_id),
    contact_mobiles = (SELECT group_concat(mobile, char(31)) FROM contacts
                       WHERE customer_id = NEW.customer_id)
  WHERE id = NEW.customer_id;
END""",
)
POSTGRESQL_TRIGGERS = (
    """CREATE OR REPLACE FUNCTION contacts_search_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE customers SET
    contact_names = (SELECT string_agg(name, chr(31)) FROM contacts
                     WHERE customer_id = customers.id),
    contact_mobiles = (SELECT string_agg(mobile, chr(31)) FROM contacts
                       WHERE customer_id = customers.id)
  WHERE id IN (SELECT customer_id FROM new_rows);
  RETURN NULL;
END
$$""",
    """CREATE OR REPLACE FUNCTION contacts_search_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE customers SET
    contact_names = (SELECT string_agg(name, chr(31)) FROM contacts
                     WHERE customer_id = customers.id),
    contact_mobiles = (SELECT string_agg(mobile, chr(31)) FROM contacts
                       WHERE customer_id = customers.id)
  WHERE id IN (SELECT customer_id FROM old_rows);
  RETURN NULL;
END
$$""",
    """CREATE OR REPLACE FUNCTION contacts_search_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE customers SET
    contact_names = (SELECT string_agg(name, chr(31)) FROM contacts
                     WHERE customer_id = customers.id),
    contact_mobiles = (SELECT string_agg(mobile, chr(31)) FROM contacts
                       WHERE customer_id = customers.id)
  WHERE id IN (SELECT customer_id FROM old_rows UNION SELECT customer_id FROM new_rows);
  RETURN NULL;
END
$$""",
    """CREATE OR REPLACE TRIGGER contacts_search_insert AFTER INSERT ON contacts
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION contacts_search_inserted()""",
    """CREATE OR REPLACE TRIGGER contacts_search_delete AFTER DELETE ON contacts
REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION contacts_search_deleted()""",
    """CREATE OR REPLACE TRIGGER contacts_search_update AFTER UPDATE ON contacts
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION contacts_search_updated()""",
)
CHANGES = ("insert", "delete", "update")


def upgrade() -> None:
    op.add_column("customers", sa.Column("contact_names", sa.Text(), nullable=True))
    op.add_column("customers", sa.Column("contact_mobiles", sa.Text(), nullable=True))
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute("LOCK TABLE contacts IN SHARE MODE")  # no write between the fill and triggers
    op.execute(POSTGRESQL_FILL if postgresql else SQLITE_FILL)
    for statement in POSTGRESQL_TRIGGERS if postgresql else SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for change in CHANGES:
        on = " ON contacts" if postgresql else ""
        op.execute(f"DROP TRIGGER IF EXISTS contacts_search_{change}{on}")
    if postgresql:
        for change in ("inserted", "deleted", "updated"):
            op.execute(f"DROP FUNCTION IF EXISTS contacts_search_{change}()")
    # ALTER TABLE, not a batch copy of the table, which would lose the triggers on customers.
    op.execute("ALTER TABLE customers DROP COLUMN contact_mobiles")
    op.execute("ALTER TABLE customers DROP COLUMN contact_names")
