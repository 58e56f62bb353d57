"""Page a list the way API.md says: `?page=&perPage=`, the total in `X-Total-Count`, the
other pages in `Link` (RFC 8288). docs/search.md tells the whole story.

- A page by number is found on ids first (`WHERE id IN (SELECT id ... ORDER BY ...
  OFFSET n LIMIT m)`), which an index answers without visiting the rows it skips.
- A list ordered by a keyset (ascending columns, the last one unique) may also be
  walked by cursor: `next` carries `after`, the keyset of the page's last item, and a
  request with `after` seeks to it instead of counting rows past an offset, so every
  page costs the same however deep it is.
- `X-Total-Count` is exact on SQLite. On PostgreSQL it is exact when the planner expects
  at most LIST_COUNT_EXACT_MAX items; above that it is the planner's estimate, so a
  large list is never counted row by row.
- Links are relative (`</api/events?page=2>`), or absolute under PUBLIC_URL when set:
  never built from the request's Host header.
"""

import base64
import binascii
import json
from datetime import datetime
from urllib.parse import urlencode

from flask import current_app, request
from marshmallow import ValidationError, fields
from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ClauseElement, Executable

from eventbook.extensions import db
from eventbook.schemas import MAX_INT

HEADERS_DOC = {
    "X-Total-Count": {
        "description": "number of items on all pages: exact up to LIST_COUNT_EXACT_MAX (1000 by default); "
        "above it, on PostgreSQL, the query planner's estimate (never below LIST_COUNT_EXACT_MAX + 1)",
        "schema": {"type": "integer"},
    },
    "Link": {
        "description": 'RFC 8288 links with rel="first", "prev", "next", "last" (relative, or absolute under the '
        'configured PUBLIC_URL); where a list can be walked by cursor, "next" also carries `after`',
        "schema": {"type": "string"},
    },
}


def paginate(stmt, args, entity, keyset=None):
    """Run `stmt` (a select of `entity`, in its final order) for the page in `args`;
    return (items, headers). `keyset`: the columns `stmt` is ordered by, ascending and
    the last one unique, when the list may be walked by cursor (`args["after"]`)."""
    page, per_page = args["page"], args["per_page"]
    after = args.get("after")
    if after is not None and keyset:
        rows = db.session.scalars(stmt.where(tuple_(*keyset) > tuple(after)).limit(per_page + 1))
    else:
        # one more than the page: whether a next page exists, whatever the total says
        ids = stmt.with_only_columns(entity.id).limit(per_page + 1).offset((page - 1) * per_page)
        rows = db.session.scalars(stmt.where(entity.id.in_(ids.scalar_subquery())))
    items = rows.unique().all()
    more = len(items) > per_page
    items = items[:per_page]
    total = count(stmt, entity)

    last = max(1, -(-total // per_page))
    if more:
        last = max(last, page + 1)
    elif items and after is None:
        last = page  # this page is the last, whatever an estimated total says
    links = {"first": _url(1), "last": _url(last)}
    if page > 1:
        links["prev"] = _url(min(page - 1, last))
    if more:
        cursor = encode_cursor(getattr(items[-1], column.key) for column in keyset) if keyset else None
        links["next"] = _url(page + 1, cursor)
    headers = {
        "X-Total-Count": str(total),
        "Link": ", ".join(f'<{url}>; rel="{rel}"' for rel, url in links.items()),
    }
    return items, headers


def count(stmt, entity):
    """The number of items of `stmt`: exact, or above LIST_COUNT_EXACT_MAX on PostgreSQL
    the planner's estimate (it comes from the table's statistics, so a large list is not
    counted row by row on every request)."""
    ids = stmt.with_only_columns(entity.id).order_by(None)
    exact_max = current_app.config["LIST_COUNT_EXACT_MAX"]
    if db.engine.dialect.name != "postgresql":
        return db.session.scalar(select(func.count()).select_from(ids.subquery()))
    estimate = round(db.session.execute(Explain(ids)).scalar()[0]["Plan"]["Plan Rows"])
    if estimate > exact_max:
        return estimate
    # The estimate may be low: count at most one past the limit, and never scan on.
    exact = db.session.scalar(select(func.count()).select_from(ids.limit(exact_max + 1).subquery()))
    return exact if exact <= exact_max else max(estimate, exact)


class Explain(Executable, ClauseElement):
    """`EXPLAIN (FORMAT JSON) statement` on PostgreSQL: its one value is the plan."""

    inherit_cache = False

    def __init__(self, statement):
        self.statement = statement


@compiles(Explain, "postgresql")
def compile_explain(element, compiler, **kwargs):
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.statement, **kwargs)


def encode_cursor(values):
    """An opaque `after` value: the keyset of an item, as JSON in URL-safe base64."""
    plain = [value.isoformat() if isinstance(value, datetime) else value for value in values]
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")


class Cursor(fields.String):
    """`after`: a cursor made by `encode_cursor` for a keyset of these Python types
    (datetime or int), loaded as the tuple of its values."""

    def __init__(self, *types, **kwargs):
        self.types = types
        metadata = {"description": 'where the page starts: the value that the `next` link carries', **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            if len(text) > 200:
                raise ValueError("too long")
            values = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            if not isinstance(values, list) or len(values) != len(self.types):
                raise ValueError("wrong shape")
            return tuple(_typed(kind, value) for kind, value in zip(self.types, values, strict=True))
        except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError) as exc:
            raise ValidationError("Not a valid cursor: use the one a Link header gave.") from exc


def _typed(kind, value):
    if kind is datetime and isinstance(value, str):
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("a cursor's time has an offset")
        return moment
    if kind is int and isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_INT:
        return value
    raise ValueError(f"not a {kind.__name__}")


def _url(page, cursor=None):
    query = request.args.copy()
    query.pop("after", None)
    query["page"] = str(page)
    if cursor is not None:
        query["after"] = cursor
    base = current_app.config["PUBLIC_URL"] or request.script_root
    return f"{base}{request.path}?{urlencode(list(query.items(multi=True)))}"
