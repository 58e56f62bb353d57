"""Full-text search of events: words and word prefixes, case and accents ignored.

PostgreSQL: a generated `tsvector` column with a GIN index. Its text search
configuration `eventbook_search` is `simple` (no stemming, no stop words: titles and
places are names) with accents removed by the `unaccent` dictionary. The column calls
`to_tsvector` with that configuration, which is immutable, as a generated column must be
(`unaccent()` itself is only stable, so a column cannot call it).

SQLite: an FTS5 table over the same three columns (unicode61 tokenizer, diacritics
removed), kept in step with `events` by triggers.

Either way ASCII punctuation separates words, so "jazz@blue-note.com" holds the words
jazz, blue, note and com on both databases. docs/search.md says why.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10
"""

import string

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The same separators as eventbook/events/search.py applies to `q`.
PUNCTUATION = string.punctuation.replace("'", "''")
SPACES = " " * len(string.punctuation)

COLUMNS = "title, description, location"
FTS_ROW = "new.id, new.title, new.description, new.location"
FTS_DELETE = (
    "INSERT INTO events_search (events_search, rowid, title, description, location) "
    "VALUES ('delete', old.id, old.title, old.description, old.location);"
)


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        upgrade_postgresql()
    else:
        upgrade_sqlite()


def upgrade_postgresql():
    # A trusted extension since PostgreSQL 13: the database's owner may create it. Where
    # that is not allowed, an administrator runs this line once before the migration.
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    op.execute("CREATE TEXT SEARCH CONFIGURATION eventbook_search (COPY = simple)")
    op.execute(
        "ALTER TEXT SEARCH CONFIGURATION eventbook_search ALTER MAPPING FOR "
        "word, numword, hword, numhword, hword_part, hword_numpart WITH unaccent, simple"
    )
    op.execute(
        "ALTER TABLE events ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
        "to_tsvector('eventbook_search'::regconfig, translate("
        "title || ' ' || coalesce(description, '') || ' ' || location, "
        f"'{PUNCTUATION}', '{SPACES}'))) STORED"
    )
    op.execute("CREATE INDEX ix_events_search_vector ON events USING gin (search_vector)")


def upgrade_sqlite():
    op.execute(
        f"CREATE VIRTUAL TABLE events_search USING fts5({COLUMNS}, content='events', content_rowid='id', "
        "tokenize='unicode61 remove_diacritics 2')"
    )
    op.execute(
        "CREATE TRIGGER events_search_insert AFTER INSERT ON events BEGIN "
        f"INSERT INTO events_search (rowid, {COLUMNS}) VALUES ({FTS_ROW}); END"
    )
    op.execute(f"CREATE TRIGGER events_search_delete AFTER DELETE ON events BEGIN {FTS_DELETE} END")
    # Only when a searched column changes: a booking's UPDATE of available_tickets
    # leaves the index alone.
    op.execute(
        f"CREATE TRIGGER events_search_update AFTER UPDATE OF {COLUMNS} ON events BEGIN {FTS_DELETE} "
        f"INSERT INTO events_search (rowid, {COLUMNS}) VALUES ({FTS_ROW}); END"
    )
    op.execute("INSERT INTO events_search (events_search) VALUES ('rebuild')")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_events_search_vector")
        op.execute("ALTER TABLE events DROP COLUMN search_vector")
        op.execute("DROP TEXT SEARCH CONFIGURATION eventbook_search")
        # unaccent stays: other schemas of the database may use it.
    else:
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER events_search_{trigger}")
        op.execute("DROP TABLE events_search")
