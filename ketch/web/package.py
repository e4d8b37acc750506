"""The package page: ``/<name>`` and ``/@scope/<name>`` for browsers (see :mod:`ketch.web.layer`).

Query parameters: ``version`` (default: the ``latest`` dist-tag), ``tab`` (``readme`` default,
``versions``, ``dependencies``, ``dependents``, ``code``), and on the Code tab ``path`` (a file or a
folder inside the tarball) and ``raw=1`` (the file as ``text/plain``, never as HTML).

The facts come from the stored full packument, read through the fast path's cache (one change
check per request, the same freshness rule as ``GET /<name>``) and parsed once per ETag. A
private package is shown only to those who may read it, by the registry's own rule; everyone else
gets the same 404 page as for a name that does not exist.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ketch.accounts.web_session import current_identity
from ketch.http.errors import ApiError
from ketch.registry import reads
from ketch.registry import services as registry
from ketch.registry.fastpath import PackumentCache
from ketch.stats.dependents import dependents_of
from ketch.web import code, data, readme
from ketch.web.render import not_found, page, pkg_url

log = logging.getLogger("ketch.web")
TABS = ("readme", "versions", "dependencies", "dependents", "code")
DEP_KINDS = (("dependencies", "Dependencies"), ("peerDependencies", "Peer dependencies"),
             ("optionalDependencies", "Optional dependencies"), ("devDependencies", "Development dependencies"),
             ("bundleDependencies", "Bundled dependencies"))
PARSED_ENTRIES = 256
DEPENDENTS_PAGE = 200
MAX_KEYWORDS = 30


def _caches(request: Request) -> dict:
    return request.app.state.ketch.caches


def _parsed(request: Request, name: str, entry) -> dict:
    store: OrderedDict = _caches(request).setdefault("web-packuments", OrderedDict())
    key = (name, entry.etag)
    doc = store.get(key)
    if doc is None:
        doc = orjson.loads(entry.full)
        store[key] = doc
        if len(store) > PARSED_ENTRIES:
            store.popitem(last=False)
    else:
        store.move_to_end(key)
    return doc


def _readmes(request: Request) -> readme.ReadmeCache:
    caches = _caches(request)
    if "web-readmes" not in caches:
        caches["web-readmes"] = readme.ReadmeCache()
    return caches["web-readmes"]


def _listings(request: Request) -> code.ListingCache:
    caches = _caches(request)
    if "web-listings" not in caches:
        caches["web-listings"] = code.ListingCache()
    return caches["web-listings"]


def _text(value: object, limit: int = 2000) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _license(manifest: dict) -> str:
    value = manifest.get("license")
    if isinstance(value, dict):
        value = value.get("type")
    return _text(value, 200)


def _person(value: object) -> str:
    if isinstance(value, dict):
        value = value.get("name")
    if isinstance(value, str):
        return value.split("<")[0].split("(")[0].strip()[:200]
    return ""


def _keywords(manifest: dict) -> list[str]:
    raw = manifest.get("keywords")
    if isinstance(raw, str):
        raw = raw.replace(",", " ").split()
    if not isinstance(raw, list):
        return []
    return list(dict.fromkeys(k.strip()[:100] for k in raw if isinstance(k, str) and k.strip()))[:MAX_KEYWORDS]


def _dependencies(manifest: dict) -> list[tuple[str, list[tuple[str, str]]]]:
    groups = []
    for key, title in DEP_KINDS:
        deps = manifest.get(key)
        if key == "bundleDependencies" and deps is None:
            deps = manifest.get("bundledDependencies")
        if isinstance(deps, list):
            items = [(d, "") for d in deps if isinstance(d, str)]
        elif isinstance(deps, dict):
            items = [(d, v if isinstance(v, str) else "") for d, v in deps.items() if isinstance(d, str)]
        else:
            items = []
        if items:
            groups.append((title, sorted(items, key=lambda i: i[0])))
    return groups


def install_commands(name: str, version: str | None) -> list[tuple[str, str]]:
    spec = f"{name}@{version}" if version else name
    return [("npm", f"npm i {spec}"), ("pnpm", f"pnpm add {spec}"), ("yarn", f"yarn add {spec}")]


async def package_page(request: Request, name: str) -> Response:
    c = request.app.state.ketch
    cache: PackumentCache = c.caches["packuments"]
    viewer = await current_identity(request)
    entry = await cache.get(name)
    if entry.etag is None:
        return not_found(request, viewer, name=name)
    package_id = None
    if entry.access != "public":
        if viewer is None:
            return not_found(request, viewer, name=name)
        async with c.db.read() as session:
            try:
                package_id = (await registry.readable_package(session, name, viewer)).id
            except ApiError as e:
                if e.status != 404:
                    raise
                return not_found(request, viewer, name=name)
    doc = _parsed(request, name, entry)
    versions: dict = doc.get("versions") or {}
    tags: dict = doc.get("dist-tags") or {}
    latest = tags.get("latest")
    params = request.query_params
    version = params.get("version") or latest
    if version not in versions:
        version = tags.get(version or "", version)  # ?version=next names a dist-tag
    if version not in versions:
        return not_found(request, viewer, what="version", name=f"{name}@{params.get('version', '')}")
    tab = params.get("tab", "readme")
    if tab not in TABS:
        tab = "readme"
    manifest: dict = versions[version]
    times: dict = doc.get("time") or {}
    dist = manifest.get("dist") if isinstance(manifest.get("dist"), dict) else {}
    repo = readme.repository_of(manifest)
    version_param = None if version == latest else version

    figures = await data.download_figures(c.caches, c.db.read, name)
    values = dict(
        name=name, version=version, latest=latest, version_param=version_param, tab=tab,
        private=entry.access != "public", manifest=manifest,
        description=_text(manifest.get("description")), keywords=_keywords(manifest),
        license=_license(manifest), author=_person(manifest.get("author")),
        homepage=readme.http_url(manifest.get("homepage")), repository=repo.web if repo else None,
        bugs=readme.http_url(manifest.get("bugs")),
        deprecated=_text(manifest.get("deprecated"), 1024) or None,
        unpacked_size=dist.get("unpackedSize"), file_count=dist.get("fileCount"),
        published=times.get(version), modified=times.get("modified"),
        maintainers=[m.get("name") for m in doc.get("maintainers") or [] if isinstance(m, dict)
                     and isinstance(m.get("name"), str)],
        version_count=len(versions), tags=tags, figures=figures,
        dependencies=_dependencies(manifest), install=install_commands(name, version_param),
    )
    values["dependency_count"] = sum(len(items) for title, items in values["dependencies"]
                                     if title != "Development dependencies")
    tarball = f"{name.rsplit('/', 1)[-1]}-{version}.tgz"

    if tab == "readme":
        text, filename = doc.get("readme"), doc.get("readmeFilename")
        if version != latest:
            async with c.db.read() as session:
                pid = package_id or await reads.package_id(session, name)
                text, filename = await reads.version_readme(session, pid, version)
        values["readme_html"] = _readmes(request).render(
            name, version, text if isinstance(text, str) else None, filename if isinstance(filename, str) else None,
            repo, lambda path: pkg_url(name, tab="code", path=path.lstrip("./"), version=version_param))
    elif tab == "versions":
        async with c.db.read() as session:
            counts = await data.version_downloads(session, name)
        history = []
        for number in reversed(list(versions)):
            v = versions[number]
            history.append((number, counts.get(number, 0), times.get(number),
                            bool(isinstance(v, dict) and v.get("deprecated"))))
        values["history"] = history
        values["tag_rows"] = sorted(((t, v, counts.get(v, 0)) for t, v in tags.items()),
                                    key=lambda r: (r[0] != "latest", r[0]))
    elif tab == "dependents":
        async with c.db.read() as session:
            names = await dependents_of(session, name, viewer)
        page_no = _page_number(params.get("page"))
        values["dependents"] = names[(page_no - 1) * DEPENDENTS_PAGE:page_no * DEPENDENTS_PAGE]
        values["dependents_total"] = len(names)
        values["dependents_page"] = page_no
        values["dependents_pages"] = max(1, -(-len(names) // DEPENDENTS_PAGE))
    elif tab == "code":
        response = await _code_tab(request, entry, tarball, values)
        if response is not None:
            return response
    return page(request, "package.html", values.pop("status", 200), viewer=viewer, **values)


def _page_number(raw: str | None) -> int:
    try:
        return max(1, min(10_000, int(raw or 1)))
    except ValueError:
        return 1


async def _code_tab(request: Request, entry, tarball: str, values: dict) -> Response | None:
    c = request.app.state.ketch
    key = entry.tarballs.get(tarball)
    path = request.query_params.get("path", "").strip("/")
    values["path"] = path
    values["crumbs"] = _crumbs(path)
    if key is None:
        values["code_error"] = "The tarball of this version is not available."
        return None
    listings = _listings(request)
    listing = listings.get(key)
    blob = None
    if listing is None:
        try:
            blob = await c.blobs.get(key)
        except KeyError:
            values["code_error"] = "The tarball of this version is missing from storage."
            return None
        listing = await asyncio.to_thread(code.list_files, blob)
        listings.put(key, listing)
    values["listing"] = listing
    if path in listing.files:
        if blob is None:
            blob = await c.blobs.get(key)
        found = await asyncio.to_thread(code.read_file, blob, path)
        if found is None:
            values["code_error"] = "This file could not be read."
            return None
        size, head = found
        if request.query_params.get("raw") == "1":
            return _raw(path, size, head)
        values["file"] = await asyncio.to_thread(code.view_file, path, size, head)
        return None
    folder = listing.directory(path)
    if folder is None:
        values["code_error"] = "There is no such file or folder in this version."
        values["status"] = 404
        return None
    values["dirs"], values["files"] = folder
    return None


def _crumbs(path: str) -> list[tuple[str, str]]:
    parts = [p for p in path.split("/") if p]
    return [(p, "/".join(parts[:i + 1])) for i, p in enumerate(parts)]


def _raw(path: str, size: int, head: bytes) -> Response:
    """A file's bytes as plain text: never HTML on this origin (nosniff, sandboxed), capped."""
    binary = code.looks_binary(head)
    headers = {
        "content-security-policy": "sandbox; default-src 'none'",
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "cache-control": "public, max-age=300",
        "vary": "accept, cookie",
    }
    if size > len(head):
        headers["x-ketch-truncated"] = f"{len(head)} of {size} bytes"
    if binary:
        filename = path.rsplit("/", 1)[-1].encode("ascii", "replace").decode().replace('"', "_")
        headers["content-disposition"] = f'attachment; filename="{filename}"'
        return Response(head, headers=headers, media_type="application/octet-stream")
    return Response(head.decode("utf-8", "replace"), headers=headers, media_type="text/plain; charset=utf-8")
