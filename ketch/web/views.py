"""Browsing pages: home, search, user profiles, org pages, and the static files.

The package page and the home page answer on the registry's own URLs (``/<name>``, ``/``) and are
dispatched by :mod:`ketch.web.layer`; the others are ordinary routes under ``/-/web/`` and
``/-/static/``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ketch.accounts import services as accounts
from ketch.accounts.web_session import current_identity
from ketch.context import base_url
from ketch.http.errors import ApiError
from ketch.orgs import services as orgs
from ketch.registry import services as registry
from ketch.registry import transfer
from ketch.search import index as search_index
from ketch.search import listings
from ketch.search import scoring
from ketch.search import services as search
from ketch.search.query import BadQuery, parse
from ketch.web import readme
from ketch.web.render import not_found, page
from ketch.web.templates import SECURITY_HEADERS, static_file

PAGE_SIZE = 20
MAX_PAGE = 500  # search offsets stop at 10,000, as the API's do
SORTS = {
    "optimal": ("Optimal", scoring.DEFAULT_WEIGHTS),
    "popularity": ("Popularity", (0.0, 1.0, 0.0)),
    "quality": ("Quality", (1.0, 0.0, 0.0)),
    "maintenance": ("Maintenance", (0.0, 0.0, 1.0)),
}


async def home(request: Request) -> Response:
    viewer = await current_identity(request)
    async with request.app.state.ketch.db.read() as session:
        recent = await listings.recently_updated(session)
        popular = await listings.most_downloaded(session)
        total = await listings.public_package_count(session)
    return page(request, "home.html", viewer=viewer, recent=recent, popular=popular, total=total,
                registry_url=base_url(request) + "/")


async def search_page(request: Request) -> Response:
    viewer = await current_identity(request)
    text = request.query_params.get("q", "").strip()[:512]
    sort = request.query_params.get("sort", "optimal")
    if sort not in SORTS:
        sort = "optimal"
    try:
        number = max(1, min(MAX_PAGE, int(request.query_params.get("page", "1"))))
    except ValueError:
        number = 1
    values = dict(search_text=text, sort=sort, sorts=SORTS, page_no=number, results=[], total=0, error=None,
                  query=None)
    if text:
        try:
            query = parse(text)
        except BadQuery as e:
            values["error"] = str(e)
        else:
            values["query"] = query
            params = search.Params(query=query, size=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE,
                                   weights=scoring.weights(*SORTS[sort][1]))
            c = request.app.state.ketch
            async with c.db.read() as session:
                result = await search.search(session, params, viewer, base_url(request))
            search_index.refresh_if_due(c.db)
            values["results"] = result["objects"]
            values["total"] = result["total"]
    values["pages"] = max(1, min(MAX_PAGE, -(-values["total"] // PAGE_SIZE)))
    values["max_score"] = max([r["score"]["final"] for r in values["results"]] + [1e-9])
    return page(request, "search.html", viewer=viewer, **values)


async def user_page(request: Request) -> Response:
    viewer = await current_identity(request)
    name = request.path_params["name"]
    async with request.app.state.ketch.db.read() as session:
        user = await accounts.get_user(session, name)
        if user is None or user.deleted is not None:
            return not_found(request, viewer, what="user", name=name)
        try:
            packages = await registry.user_packages(session, user.name, viewer)
        except ApiError:
            packages = {}
        owned = [n for n, level in packages.items() if level == "write"]
        docs = await listings.summaries(session, owned)
        memberships = await orgs.orgs_of(session, user.id)
        mine = dict(await orgs.orgs_of(session, viewer.user_id)) if viewer else {}
    # An org membership is shown to the user and to fellow members only, as the org API does.
    shown_orgs = [(org, role) for org, role in memberships if viewer and (viewer.user_id == user.id or org in mine)]
    return page(request, "user.html", viewer=viewer, user=user, packages=owned, docs=docs, orgs=shown_orgs,
                homepage=readme.http_url(user.homepage),
                is_me=bool(viewer and viewer.user_id == user.id))


async def org_page(request: Request) -> Response:
    viewer = await current_identity(request)
    name = request.path_params["name"]
    async with request.app.state.ketch.db.read() as session:
        org = await orgs.get_org(session, name)
        if org is None:
            return not_found(request, viewer, what="organization", name=name)
        role = await orgs.role_of(session, org.id, viewer.user_id) if viewer else None
        packages = await transfer.org_packages(session, org, viewer)
        docs = await listings.summaries(session, list(packages))
        members, teams, sizes = {}, [], {}
        if role is not None:  # members, roles and teams are for members' eyes (as `npm org ls` is)
            members = await orgs.members(session, org.id)
            teams = await orgs.teams(session, org.id)
            sizes = await orgs.team_sizes(session, [t.id for t in teams])
    return page(request, "org.html", viewer=viewer, org=org, role=role, packages=list(packages), docs=docs,
                members=sorted(members.items()), teams=teams, team_sizes=sizes)


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    found = static_file(name)
    if found is None:
        return Response("Not found", status_code=404, media_type="text/plain",
                        headers={"x-content-type-options": "nosniff"})
    etag = f'"{found.digest}"'
    fresh = request.query_params.get("v") == found.digest
    headers = {"etag": etag, "x-content-type-options": "nosniff",
               "content-security-policy": SECURITY_HEADERS["content-security-policy"],
               "cache-control": "public, max-age=31536000, immutable" if fresh else "public, no-cache"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(found.body, headers=headers, media_type=found.media_type)


routes = [
    Route("/-/web/search", search_page, methods=["GET", "HEAD"], name="web.search"),
    Route("/-/web/user/{name}", user_page, methods=["GET", "HEAD"], name="web.user"),
    Route("/-/web/org/{name}", org_page, methods=["GET", "HEAD"], name="web.org"),
    Route("/-/static/{name}", static, methods=["GET", "HEAD"], name="web.static"),
]
