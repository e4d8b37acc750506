"""search index

Revision ID: 0004
Revises: 0003

The ``search_documents`` table is the same on both databases; the full-text side differs:
SQLite gets FTS5 tables (words, with the porter stemmer and prefix indexes; trigrams of names for
typos), PostgreSQL a generated ``tsvector`` column with a GIN index and pg_trgm on names.
Everything here is derived data: ``ketch reindex`` fills it from the packages tables.
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# Weights: A name words, B keywords, C description, D README (ts_rank scales them 1.0/0.4/0.2/0.1).
PG_TSV = """setweight(to_tsvector('simple', name_words), 'A')
 || setweight(to_tsvector('simple', keywords), 'B')
 || setweight(to_tsvector('english', description), 'C')
 || setweight(to_tsvector('english', readme), 'D')"""


def upgrade() -> None:
    op.create_table(
        'search_documents',
        sa.Column('package_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=214), nullable=False),
        sa.Column('name_key', sa.String(length=214), nullable=False),
        sa.Column('short_key', sa.String(length=214), nullable=False),
        sa.Column('name_words', sa.String(length=300), nullable=False),
        sa.Column('scope', sa.String(length=214), nullable=True),
        sa.Column('access', sa.String(length=16), nullable=False),
        sa.Column('version', sa.String(length=256), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('keywords', sa.Text(), nullable=False),
        sa.Column('readme', sa.Text(), nullable=False),
        sa.Column('keyword_key', sa.Text(), nullable=False),
        sa.Column('author_key', sa.Text(), nullable=False),
        sa.Column('maintainer_key', sa.Text(), nullable=False),
        sa.Column('deprecated', sa.Text(), nullable=True),
        sa.Column('unstable', sa.Boolean(), nullable=False),
        sa.Column('date', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated', sa.DateTime(timezone=True), nullable=False),
        sa.Column('quality', sa.Float(), nullable=False),
        sa.Column('maintenance', sa.Float(), nullable=False),
        sa.Column('popularity', sa.Float(), nullable=False),
        sa.Column('weekly_downloads', sa.Integer(), nullable=False),
        sa.Column('dependents', sa.Integer(), nullable=False),
        sa.Column('document', sa.Text(), nullable=False),
        sa.Column('releases', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['package_id'], ['packages.id'], ondelete='CASCADE',
                                name=op.f('fk_search_documents_package_id_packages')),
        sa.PrimaryKeyConstraint('package_id', name=op.f('pk_search_documents')),
        sa.UniqueConstraint('name', name=op.f('uq_search_documents_name')),
    )
    for column in ('name_key', 'short_key', 'scope', 'popularity', 'weekly_downloads', 'dependents'):
        op.create_index(op.f(f'ix_search_documents_{column}'), 'search_documents', [column], unique=False)
    op.create_table(
        'search_meta',
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('refreshed', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_search_meta')),
    )
    if op.get_bind().dialect.name == 'sqlite':
        op.execute("CREATE VIRTUAL TABLE search_fts USING fts5(name, keywords, description, readme, "
                   "tokenize='porter unicode61 remove_diacritics 2', prefix='2 3')")
        op.execute("CREATE VIRTUAL TABLE search_names USING fts5(name, tokenize='trigram')")
    else:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(f"ALTER TABLE search_documents ADD COLUMN tsv tsvector GENERATED ALWAYS AS ({PG_TSV}) STORED")
        op.execute("CREATE INDEX ix_search_documents_tsv ON search_documents USING gin (tsv)")
        op.execute("CREATE INDEX ix_search_documents_short_trgm ON search_documents "
                   "USING gin (short_key gin_trgm_ops)")
        # LIKE 'prefix%' can use these whatever the database's collation is.
        op.execute("CREATE INDEX ix_search_documents_name_key_prefix ON search_documents "
                   "(name_key text_pattern_ops)")
        op.execute("CREATE INDEX ix_search_documents_short_key_prefix ON search_documents "
                   "(short_key text_pattern_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        op.execute("DROP TABLE IF EXISTS search_names")
        op.execute("DROP TABLE IF EXISTS search_fts")
    op.drop_table('search_meta')
    op.drop_table('search_documents')
