"""Page a list the way API.md says: `?page=&perPage=`, the total in `X-Total-Count`, the
other pages in `Link` (RFC 8288). docs/search.md tells the whole story.

- A page by number is found on ids first (`WHERE id IN (SELECT id ... ORDER BY ...
  OFFSET n LIMIT m)`), which an index answers without visiting the rows it skips.
- A list ordered by a keyset (ascending columns, the last one unique) may also be
  walked by cursor: `next` carries `after`, the keyset of the page's last item, and a
  request with `after` seeks to it instead of counting rows past an offset, so every
  page costs the same however deep it is.
- `X-Total-Count` is exact on SQLite, and on the last page of any list reached by
  number (the items before it and on it). On other pages on PostgreSQL, those reached by
  cursor included, it is exact when the planner expects at most LIST_COUNT_EXACT_MAX
  items; above that it is the planner's estimate, so a large list is never counted row
  by row.
- Links are relative (`</api/events?page=2>`), or absolute under PUBLIC_URL when set:
  never built from the request's Host header.
"""

import re
from datetime import datetime, timedelta, timezone
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
        "description": "number of items on all pages: exact on SQLite, on a list's last page reached by number, and "
        "up to LIST_COUNT_EXACT_MAX (1000 by default) as the query planner expects it; above that, on other pages "
        "on PostgreSQL (pages reached by cursor among them), the planner's estimate (never below "
        "LIST_COUNT_EXACT_MAX + 1)",
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
    if not more and after is None and (items or page == 1):
        total = (page - 1) * per_page + len(items)  # this page is the list's last: the total is known
    else:
        total = count(stmt, entity)  # by cursor too: its page number is the client's, and only numbers links

    last = max(1, -(-total // per_page))
    if more:
        last = max(last, page + 1)
    elif items:
        # this page is the last, whatever an estimated total says (by cursor, as the client numbers it)
        last = page if after is None else max(last, page)
    links = {"first": _url(1, per_page), "last": _url(last, per_page)}
    if page > 1:
        links["prev"] = _url(min(page - 1, last), per_page)
    if more:
        cursor = encode_cursor(getattr(items[-1], column.key) for column in keyset) if keyset else None
        links["next"] = _url(page + 1, per_page, cursor)
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


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# The range of a cursor's values, by their type: times from 0001-01-01 to 9999-12-31 (in
# microseconds since 1970), ids of the database's integer.
_BOUNDS = {datetime: (-62135596800 * 10**6, 253402300799999999), int: (0, MAX_INT)}


def encode_cursor(values):
    """An `after` value: the keyset of an item, each value an integer (a time in
    microseconds since 1970), joined by "_"."""
    return "_".join(str((value - EPOCH) // timedelta(microseconds=1) if isinstance(value, datetime) else value)
                    for value in values)


class Cursor(fields.String):
    """`after`: a cursor made by `encode_cursor` for a keyset of these Python types
    (datetime or int), loaded as the tuple of its values. Any string of the documented
    pattern is a position in the list (values out of range are brought to the nearest
    one, which orders the same), so only a malformed cursor is refused."""

    def __init__(self, *types, **kwargs):
        self.types = types
        self.pattern = "_".join(["-?[0-9]{1,18}"] * len(types))
        metadata = {
            "description": "where the page starts: the `after` of a `next` link (an opaque position in the list)",
            "pattern": f"^{self.pattern}$",
            **kwargs.pop("metadata", {}),
        }
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if not re.fullmatch(self.pattern, text):
            raise ValidationError("Not a valid cursor: use the `after` of a Link header.")
        return _position(self.types, [int(part) for part in text.split("_")])


def _position(kinds, numbers):
    """The keyset of `kinds` nearest to `numbers`: from the first value out of range on,
    every value is the bound that one went past, so that the position orders the same."""
    position = []
    for i, (kind, number) in enumerate(zip(kinds, numbers, strict=True)):
        low, high = _BOUNDS[kind]
        if not low <= number <= high:
            side = 0 if number < low else 1
            return (*position, *(_value(rest, _BOUNDS[rest][side]) for rest in kinds[i:]))
        position.append(_value(kind, number))
    return tuple(position)


def _value(kind, number):
    return EPOCH + timedelta(microseconds=number) if kind is datetime else number


def _url(page, per_page, cursor=None):
    query = request.args.copy()
    query.pop("after", None)
    query["page"] = str(page)
    if "perPage" in query:
        query["perPage"] = str(per_page)  # as served: a perPage above 100 was capped
    if cursor is not None:
        query["after"] = cursor
    base = current_app.config["PUBLIC_URL"] or request.script_root
    return f"{base}{request.path}?{urlencode(list(query.items(multi=True)))}"
