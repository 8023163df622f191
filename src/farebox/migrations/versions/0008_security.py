"""security: key expiry, sessions tied to their key, idempotency scoped to the caller, link requests

Revision ID: 0008_security
Revises: 0007_audit
Create Date: 2026-12-04 23:10:00

Idempotency keys are recreated with their new key (tenant, principal, key):
stored answers live 24 hours (F14), so the old rows are dropped rather than
guessed into a scope.
"""

from alembic import op
import sqlalchemy as sa
import farebox.storage.types
from sqlalchemy.dialects import postgresql

revision = '0008_security'
down_revision = '0008_admission_hosts'
branch_labels = None
depends_on = None

UTC = farebox.storage.types.UTCDateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', UTC, nullable=True))
    with op.batch_alter_table('portal_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('api_key_id', sa.String(length=40), nullable=True))
    op.drop_table('idempotency_keys')
    op.create_table('idempotency_keys',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('principal', sa.String(length=16), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('response', JSON, nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'principal', 'key', name=op.f('pk_idempotency_keys'))
    )
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.create_index('ix_idempotency_keys_created_at', ['created_at'], unique=False)
    op.create_table('portal_link_requests',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('client', sa.String(length=64), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('email_hash', sa.String(length=64), nullable=False),
    sa.Column('requested_at', UTC, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_portal_link_requests'))
    )
    with op.batch_alter_table('portal_link_requests', schema=None) as batch_op:
        batch_op.create_index('ix_portal_link_requests_client', ['client', 'requested_at'], unique=False)
        batch_op.create_index('ix_portal_link_requests_email', ['tenant_id', 'email_hash', 'requested_at'], unique=False)


def downgrade() -> None:
    op.drop_table('portal_link_requests')
    op.drop_table('idempotency_keys')
    op.create_table('idempotency_keys',
    sa.Column('scope', sa.String(length=64), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('response', JSON, nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.PrimaryKeyConstraint('scope', 'key', name=op.f('pk_idempotency_keys'))
    )
    with op.batch_alter_table('portal_sessions', schema=None) as batch_op:
        batch_op.drop_column('api_key_id')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
