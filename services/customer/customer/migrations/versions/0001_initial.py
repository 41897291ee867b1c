"""Initial schema: customers, tags, code counters, contacts, relationships, care records,
history, outbox and inbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 20:17:29.448154
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crm_common.migrations import (
    create_inbox_table,
    create_outbox_table,
    drop_inbox_table,
    drop_outbox_table,
)

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('customer_code_counters',
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last_value', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('year')
    )
    op.create_table('customers',
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('name_key', sa.String(length=200), nullable=False),
    sa.Column('short_name', sa.String(length=100), nullable=True),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('category', sa.String(length=10), nullable=True),
    sa.Column('industry', sa.String(length=100), nullable=True),
    sa.Column('region', sa.String(length=100), nullable=True),
    sa.Column('address', sa.String(length=300), nullable=True),
    sa.Column('phone', sa.String(length=40), nullable=True),
    sa.Column('phone_key', sa.String(length=20), nullable=True),
    sa.Column('credit_code', sa.String(length=18), nullable=True),
    sa.Column('credit_level', sa.String(length=10), nullable=True),
    sa.Column('owner_id', sa.String(length=64), nullable=True),
    sa.Column('department_id', sa.String(length=64), nullable=True),
    sa.Column('remark', sa.Text(), nullable=True),
    sa.Column('merged_into_id', sa.Uuid(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("kind in ('enterprise', 'individual')", name='ck_customers_kind'),
    sa.CheckConstraint("status in ('potential', 'formal', 'dormant', 'disabled', 'merged')", name='ck_customers_status'),
    sa.ForeignKeyConstraint(['merged_into_id'], ['customers.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code'),
    sa.UniqueConstraint('credit_code')
    )
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customers_category'), ['category'], unique=False)
        batch_op.create_index('ix_customers_created_at_id', ['created_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_customers_department_id'), ['department_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_customers_name'), ['name'], unique=False)
        batch_op.create_index(batch_op.f('ix_customers_name_key'), ['name_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_customers_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_customers_phone_key'), ['phone_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_customers_region'), ['region'], unique=False)
        batch_op.create_index(batch_op.f('ix_customers_status'), ['status'], unique=False)

    create_inbox_table(op)
    create_outbox_table(op)

    op.create_table('contacts',
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('title', sa.String(length=100), nullable=True),
    sa.Column('department', sa.String(length=100), nullable=True),
    sa.Column('mobile', sa.String(length=11), nullable=True),
    sa.Column('phone', sa.String(length=40), nullable=True),
    sa.Column('email', sa.String(length=200), nullable=True),
    sa.Column('birthday', sa.Date(), nullable=True),
    sa.Column('is_primary', sa.Boolean(), nullable=False),
    sa.Column('purchase_role', sa.String(length=20), nullable=True),
    sa.Column('remark', sa.Text(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contacts_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_contacts_mobile'), ['mobile'], unique=False)
        batch_op.create_index(batch_op.f('ix_contacts_name'), ['name'], unique=False)
        batch_op.create_index('uq_contacts_one_primary', ['customer_id'], unique=True, sqlite_where=sa.text('is_primary IS 1'), postgresql_where=sa.text('is_primary IS true'))

    op.create_table('customer_relationships',
    sa.Column('from_customer_id', sa.Uuid(), nullable=False),
    sa.Column('to_customer_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('created_by', sa.String(length=64), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("kind in ('parent', 'subsidiary', 'partner', 'influences')", name='ck_relationship_kind'),
    sa.CheckConstraint('from_customer_id <> to_customer_id', name='ck_relationship_not_self'),
    sa.ForeignKeyConstraint(['from_customer_id'], ['customers.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['to_customer_id'], ['customers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('from_customer_id', 'to_customer_id', 'kind', name='uq_relationship')
    )
    with op.batch_alter_table('customer_relationships', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_relationships_from_customer_id'), ['from_customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_relationships_to_customer_id'), ['to_customer_id'], unique=False)

    op.create_table('customer_tags',
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('tag', sa.String(length=32), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', 'tag')
    )
    with op.batch_alter_table('customer_tags', schema=None) as batch_op:
        batch_op.create_index('ix_customer_tags_tag', ['tag', 'customer_id'], unique=False)

    op.create_table('history_entries',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('entity_type', sa.String(length=20), nullable=False),
    sa.Column('entity_id', sa.String(length=36), nullable=False),
    sa.Column('change', sa.String(length=30), nullable=False),
    sa.Column('actor_id', sa.String(length=64), nullable=True),
    sa.Column('field', sa.String(length=50), nullable=True),
    sa.Column('old', sa.JSON(), nullable=True),
    sa.Column('new', sa.JSON(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('history_entries', schema=None) as batch_op:
        batch_op.create_index('ix_history_customer_at', ['customer_id', 'at', 'id'], unique=False)

    op.create_table('care_records',
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('contact_id', sa.Uuid(), nullable=True),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('date', sa.Date(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('by_user_id', sa.String(length=64), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('care_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_care_records_customer_id'), ['customer_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('care_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_care_records_customer_id'))

    op.drop_table('care_records')
    with op.batch_alter_table('history_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_history_customer_at')

    op.drop_table('history_entries')
    with op.batch_alter_table('customer_tags', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_tags_tag')

    op.drop_table('customer_tags')
    with op.batch_alter_table('customer_relationships', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_relationships_to_customer_id'))
        batch_op.drop_index(batch_op.f('ix_customer_relationships_from_customer_id'))

    op.drop_table('customer_relationships')
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_index('uq_contacts_one_primary', sqlite_where=sa.text('is_primary IS 1'), postgresql_where=sa.text('is_primary IS true'))
        batch_op.drop_index(batch_op.f('ix_contacts_name'))
        batch_op.drop_index(batch_op.f('ix_contacts_mobile'))
        batch_op.drop_index(batch_op.f('ix_contacts_customer_id'))

    op.drop_table('contacts')
    drop_outbox_table(op)
    drop_inbox_table(op)
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customers_status'))
        batch_op.drop_index(batch_op.f('ix_customers_region'))
        batch_op.drop_index(batch_op.f('ix_customers_phone_key'))
        batch_op.drop_index(batch_op.f('ix_customers_owner_id'))
        batch_op.drop_index(batch_op.f('ix_customers_name_key'))
        batch_op.drop_index(batch_op.f('ix_customers_name'))
        batch_op.drop_index(batch_op.f('ix_customers_department_id'))
        batch_op.drop_index('ix_customers_created_at_id')
        batch_op.drop_index(batch_op.f('ix_customers_category'))

    op.drop_table('customers')
    op.drop_table('customer_code_counters')
