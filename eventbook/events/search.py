"""Browsing and searching events: the query behind `GET /api/events`.

`q` is split into words (runs of letters and digits: anything else, punctuation of any
script, a symbol, separates words, as punctuation does in the index), and an event
matches when every word begins a word of its title, description or location, case and
accents ignored: "conf" finds "Conférence".
PostgreSQL answers from the GIN index on `events.search_vector`, SQLite from the FTS5
table `events_search`; both are kept in step by the database (migration 0005).
"""

import unicodedata

from sqlalchemy import cast, column, false, func, literal_column, select, table
from sqlalchemy.dialects.postgresql import REGCONFIG

from eventbook.extensions import db
from eventbook.models import Event, EventStatus, utcnow

ORDER = (Event.date, Event.id)  # every page is sorted by it; the keyset of cursors

_search_vector = literal_column("events.search_vector")  # PostgreSQL's; not mapped (docs/search.md)
_fts = table("events_search", column("rowid"), column("events_search"))  # SQLite's


def browse(args):
    """The select statement for `GET /api/events`, filters applied, sorted by date."""
    stmt = select(Event).order_by(*ORDER)
    stmt = stmt.where(Event.status == args.get("status", EventStatus.SCHEDULED))
    if "status" not in args and "date_from" not in args:
        stmt = stmt.where(Event.date >= utcnow())  # upcoming only, unless asked otherwise
    if "date_from" in args:
        stmt = stmt.where(Event.date >= args["date_from"])
    if "date_to" in args:
        stmt = stmt.where(Event.date <= args["date_to"])
    if "organizer_id" in args:
        stmt = stmt.where(Event.organizer_id == args["organizer_id"])
    if args.get("q", "").strip():
        stmt = stmt.where(matches(words(args["q"])))
    return stmt


def words(q):
    """The words of a query: runs of letters and digits, with the marks written on them
    (an accent typed apart, a vowel sign); anything else separates words. A piece with no
    letter or digit (a lone combining accent) is no word. In NFC, as titles are kept."""
    text = "".join(c if unicodedata.category(c)[0] in "LMN" else " " for c in unicodedata.normalize("NFC", q))
    return [word for word in text.split() if any(c.isalnum() for c in word)]


def matches(terms):
    """SQL: the event holds a word beginning with each of `terms` (nothing matches none)."""
    if not terms:
        return false()
    if db.engine.dialect.name == "postgresql":
        # Punctuation is gone, so no term holds tsquery syntax; the configuration folds
        # case and accents of the terms as it did those of the events.
        query = func.to_tsquery(cast("eventbook_search", REGCONFIG), " & ".join(f"{term}:*" for term in terms))
        return _search_vector.bool_op("@@")(query)
    # FTS5: each term a quoted string (no '"' is left in it) with a prefix star.
    query = " AND ".join(f'"{term}"*' for term in terms)
    return Event.id.in_(select(_fts.c.rowid).where(_fts.c.events_search.match(query)))
