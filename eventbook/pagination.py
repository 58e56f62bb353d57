"""Page a query the way API.md says: `?page=&perPage=`, totals in `X-Total-Count` and
`Link` headers.

Two things keep a page cheap on a large table:
- the page is found on ids first (`WHERE id IN (SELECT id ... ORDER BY ... OFFSET n
  LIMIT m)`), which the index answers without visiting the rows a deep page skips;
- public listings may cache their total for LIST_COUNT_CACHE_SECONDS per process, so
  counting every matching row is not paid on every request.
"""

import threading
import time
from urllib.parse import urlencode

from flask import current_app, request
from sqlalchemy import func, select

from eventbook.extensions import db

HEADERS_DOC = {
    "X-Total-Count": {"description": "number of items on all pages", "schema": {"type": "integer"}},
    "Link": {"description": 'RFC 8288 links with rel="first", "prev", "next", "last"', "schema": {"type": "string"}},
}

_totals = {}  # cache key -> (expires, total)
_totals_lock = threading.Lock()


def paginate(stmt, args, entity, cache_key=None):
    """Run `stmt` (a select of `entity`, ordered) for the page in `args`; return (items, headers)."""
    page, per_page = args["page"], args["per_page"]
    total = _total(stmt, cache_key)
    page_ids = stmt.with_only_columns(entity.id).limit(per_page).offset((page - 1) * per_page)
    items = db.session.scalars(
        select(entity).where(entity.id.in_(page_ids.scalar_subquery())).order_by(*stmt._order_by_clauses)
    ).unique().all()
    last = max(1, -(-total // per_page))
    links = {"first": 1, "last": last}
    if page > 1:
        links["prev"] = min(page - 1, last)
    if page < last:
        links["next"] = page + 1
    headers = {
        "X-Total-Count": str(total),
        "Link": ", ".join(f'<{_url(number)}>; rel="{rel}"' for rel, number in links.items()),
    }
    return items, headers


def _total(stmt, cache_key):
    ttl = current_app.config["LIST_COUNT_CACHE_SECONDS"]
    now = time.monotonic()
    if cache_key is not None and ttl > 0:
        cached = _totals.get(cache_key)
        if cached and cached[0] > now:
            return cached[1]
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    if cache_key is not None and ttl > 0:
        with _totals_lock:
            if len(_totals) > 1000:
                _totals.clear()
            _totals[cache_key] = (now + ttl, total)
    return total


def _url(page):
    query = request.args.copy()
    query["page"] = str(page)
    return f"{request.base_url}?{urlencode(list(query.items(multi=True)))}"
