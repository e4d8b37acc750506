"""download stats and dependents

Revision ID: 0003
Revises: 0002

Daily download counts per (package, version, day) with two roll-ups kept exact at flush time
(per package and day, registry-wide per day), and the dependents of every package's latest version.
See docs/decisions/0003-download-counts.md.
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('version_downloads',
    sa.Column('package', sa.String(length=214), nullable=False),
    sa.Column('version', sa.String(length=256), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('package', 'version', 'day', name=op.f('pk_version_downloads'))
    )
    op.create_table('package_downloads',
    sa.Column('package', sa.String(length=214), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('package', 'day', name=op.f('pk_package_downloads'))
    )
    op.create_table('total_downloads',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_total_downloads'))
    )
    op.create_table('dependents',
    sa.Column('dependency', sa.String(length=214), nullable=False),
    sa.Column('dependent_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('dependent', sa.String(length=214), nullable=False),
    sa.Column('private', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['dependent_id'], ['packages.id'], name=op.f('fk_dependents_dependent_id_packages'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('dependency', 'dependent_id', 'kind', name=op.f('pk_dependents'))
    )
    with op.batch_alter_table('dependents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dependents_dependent_id'), ['dependent_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('dependents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dependents_dependent_id'))
    op.drop_table('dependents')
    op.drop_table('total_downloads')
    op.drop_table('package_downloads')
    op.drop_table('version_downloads')
