"""proxy cache and changes feed

Revision ID: 0006
Revises: 0005

Packuments and tarballs cached from uplinks (ketch/proxy), the replication feed's change log and
the resume points of `ketch mirror` (ketch/feed).
"""
from alembic import op
import sqlalchemy as sa

from ketch.db.base import UTCDateTime

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'changes',
        sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('name', sa.String(length=214), nullable=False),
        sa.Column('rev', sa.String(length=80), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('deleted', sa.Boolean(), nullable=False),
        sa.Column('at', UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('seq', name=op.f('pk_changes')),
    )
    op.create_index(op.f('ix_changes_name'), 'changes', ['name'], unique=False)
    op.create_table(
        'mirror_state',
        sa.Column('source', sa.String(length=500), nullable=False),
        sa.Column('since', sa.String(length=100), nullable=False),
        sa.Column('updated', UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('source', name=op.f('pk_mirror_state')),
    )
    op.create_table(
        'proxy_packuments',
        sa.Column('name', sa.String(length=214), nullable=False),
        sa.Column('uplink', sa.String(length=100), nullable=False),
        sa.Column('fetched', UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_used', UTCDateTime(timezone=True), nullable=False),
        sa.Column('upstream_etag', sa.String(length=300), nullable=True),
        sa.Column('etag', sa.String(length=80), nullable=False),
        sa.Column('full', sa.LargeBinary(), nullable=False),
        sa.Column('abbreviated', sa.LargeBinary(), nullable=False),
        sa.Column('files', sa.LargeBinary(), nullable=False),
        sa.Column('pinned', sa.Boolean(), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_proxy_packuments')),
    )
    op.create_index(op.f('ix_proxy_packuments_last_used'), 'proxy_packuments', ['last_used'], unique=False)
    op.create_table(
        'proxy_tarballs',
        sa.Column('name', sa.String(length=214), nullable=False),
        sa.Column('filename', sa.String(length=300), nullable=False),
        sa.Column('blob_key', sa.String(length=200), nullable=False),
        sa.Column('integrity', sa.String(length=200), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('fetched', UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_used', UTCDateTime(timezone=True), nullable=False),
        sa.Column('pinned', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('name', 'filename', name=op.f('pk_proxy_tarballs')),
    )
    op.create_index(op.f('ix_proxy_tarballs_last_used'), 'proxy_tarballs', ['last_used'], unique=False)


def downgrade() -> None:
    op.drop_table('proxy_tarballs')
    op.drop_table('proxy_packuments')
    op.drop_table('mirror_state')
    op.drop_table('changes')
