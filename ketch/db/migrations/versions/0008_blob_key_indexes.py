"""blob key indexes

Revision ID: 0008
Revises: 0007

`ketch cache prune` and `ketch mirror` delete a blob only when no version or cached tarball still
names it; these indexes keep that check from scanning both tables.
"""
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f('ix_versions_blob_key'), 'versions', ['blob_key'], unique=False)
    op.create_index(op.f('ix_proxy_tarballs_blob_key'), 'proxy_tarballs', ['blob_key'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_proxy_tarballs_blob_key'), table_name='proxy_tarballs')
    op.drop_index(op.f('ix_versions_blob_key'), table_name='versions')
