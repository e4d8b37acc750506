"""org packages and invitations

Revision ID: 0007
Revises: 0006

Packages transferred to an organization (``org_packages``) and emailed invitations to join one
(``org_invitations``); ketch/orgs/models.py.
"""
from alembic import op
import sqlalchemy as sa

from ketch.db.base import UTCDateTime

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'org_packages',
        sa.Column('package_id', sa.Integer(), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_org_packages_org_id_orgs'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['package_id'], ['packages.id'], name=op.f('fk_org_packages_package_id_packages'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('package_id', name=op.f('pk_org_packages')),
    )
    op.create_index(op.f('ix_org_packages_org_id'), 'org_packages', ['org_id'], unique=False)
    op.create_table(
        'org_invitations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('email', sa.String(length=320), nullable=True),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('invited_by', sa.Integer(), nullable=True),
        sa.Column('created', UTCDateTime(timezone=True), nullable=False),
        sa.Column('expires', UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_org_invitations_org_id_orgs'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_org_invitations_user_id_users'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['invited_by'], ['users.id'], name=op.f('fk_org_invitations_invited_by_users'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_org_invitations')),
        sa.UniqueConstraint('digest', name=op.f('uq_org_invitations_digest')),
    )
    op.create_index(op.f('ix_org_invitations_org_id'), 'org_invitations', ['org_id'], unique=False)
    op.create_index(op.f('ix_org_invitations_user_id'), 'org_invitations', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_org_invitations_user_id'), table_name='org_invitations')
    op.drop_index(op.f('ix_org_invitations_org_id'), table_name='org_invitations')
    op.drop_table('org_invitations')
    op.drop_index(op.f('ix_org_packages_org_id'), table_name='org_packages')
    op.drop_table('org_packages')
