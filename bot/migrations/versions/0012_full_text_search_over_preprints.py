"""full-text search over preprints (title, abstract, authors, DOI) for the web pages' search
box and custom feeds: an FTS5 index kept by triggers on SQLite, a generated tsvector with a
GIN index on PostgreSQL

A later migration that rebuilds `preprints` on SQLite (batch_alter_table copies the table)
drops these triggers with the old table: it must create them again and rebuild the index.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 10:20:00
"""
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

# The same text on both databases: what bot/web/search.py searches.
PG_DOCUMENT = (
    "coalesce(title, '') || ' ' || coalesce(abstract, '') || ' ' || coalesce(authors_json, '') || ' ' || coalesce(doi, '')"
)

SQLITE_UP = [
    # External content: the index holds no second copy of the text, only its terms.
    "CREATE VIRTUAL TABLE preprints_fts USING fts5(title, abstract, authors_json, doi, "
    "content='preprints', content_rowid='id', tokenize='porter unicode61')",
    "CREATE TRIGGER preprints_fts_insert AFTER INSERT ON preprints BEGIN "
    "INSERT INTO preprints_fts(rowid, title, abstract, authors_json, doi) "
    "VALUES (new.id, new.title, new.abstract, new.authors_json, new.doi); END",
    "CREATE TRIGGER preprints_fts_delete AFTER DELETE ON preprints BEGIN "
    "INSERT INTO preprints_fts(preprints_fts, rowid, title, abstract, authors_json, doi) "
    "VALUES ('delete', old.id, old.title, old.abstract, old.authors_json, old.doi); END",
    "CREATE TRIGGER preprints_fts_update AFTER UPDATE OF title, abstract, authors_json, doi ON preprints BEGIN "
    "INSERT INTO preprints_fts(preprints_fts, rowid, title, abstract, authors_json, doi) "
    "VALUES ('delete', old.id, old.title, old.abstract, old.authors_json, old.doi); "
    "INSERT INTO preprints_fts(rowid, title, abstract, authors_json, doi) "
    "VALUES (new.id, new.title, new.abstract, new.authors_json, new.doi); END",
    "INSERT INTO preprints_fts(preprints_fts) VALUES ('rebuild')",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_UP:
            op.execute(statement)
        return
    op.execute(
        f"ALTER TABLE preprints ADD COLUMN search tsvector GENERATED ALWAYS AS "
        f"(to_tsvector('english', {PG_DOCUMENT})) STORED"
    )
    op.execute("CREATE INDEX ix_preprints_search ON preprints USING gin (search)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS preprints_fts_{name}")
        op.execute("DROP TABLE IF EXISTS preprints_fts")
        return
    op.execute("DROP INDEX IF EXISTS ix_preprints_search")
    op.execute("ALTER TABLE preprints DROP COLUMN IF EXISTS search")
