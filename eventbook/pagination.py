"""Page a query the way API.md says: `?page=&perPage=`, totals in `X-Total-Count` and
`Link` headers."""

from urllib.parse import urlencode

from flask import request
from sqlalchemy import func, select

from eventbook.extensions import db

HEADERS_DOC = {
    "X-Total-Count": {"description": "number of items on all pages", "schema": {"type": "integer"}},
    "Link": {"description": 'RFC 8288 links with rel="first", "prev", "next", "last"', "schema": {"type": "string"}},
}


def paginate(stmt, args):
    """Run `stmt` for the page in `args`; return (items, headers)."""
    page, per_page = args["page"], args["per_page"]
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    items = db.session.scalars(stmt.limit(per_page).offset((page - 1) * per_page)).unique().all()
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


def _url(page):
    query = request.args.copy()
    query["page"] = str(page)
    return f"{request.base_url}?{urlencode(list(query.items(multi=True)))}"
