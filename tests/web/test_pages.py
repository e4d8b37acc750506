"""The website in-process (Starlette's TestClient): dispatch by Accept, headers, HTML validity,
private pages, the code browser's caps, README sanitising."""

from __future__ import annotations

import json
import re
import uuid
from html.parser import HTMLParser

import pytest

from ketch.web import code, readme
from ketch.web.layer import WebPages, page_target, prefers_html
from tests.web import xss_corpus
from tests.web.support import HTML, make_tarball, publish_body, signup_body, unique

NPM_ACCEPTS = [
    "application/json",
    "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*",
    "*/*",
    "",
    "application/vnd.npm.install-v1+json",
    "application/json, text/html;q=0.5",  # asks for HTML, but less than JSON
]
BROWSER_ACCEPTS = [
    HTML,
    "text/html",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",  # Firefox
    "application/json;q=0.5, text/html",
]


@pytest.mark.parametrize("accept", NPM_ACCEPTS)
def test_clients_never_get_pages(accept):
    assert not prefers_html(accept)


@pytest.mark.parametrize("accept", BROWSER_ACCEPTS)
def test_browsers_get_pages(accept):
    assert prefers_html(accept)


@pytest.mark.parametrize("path, target", [
    ("/", ""), ("/lodash", "lodash"), ("/@babel/core", "@babel/core"), ("/lodash/-/lodash-1.0.0.tgz", None),
    ("/lodash/1.0.0", None), ("/-/v1/search", None), ("/-/web/search", None), ("/@babel", None),
    ("/@babel/core/-/core-1.0.0.tgz", None), ("/@/x", None),
])
def test_page_targets(path, target):
    assert page_target(path) == target


async def test_layer_passes_other_requests_through_untouched():
    seen = []

    async def inner(scope, receive, send):
        seen.append(scope)

    layer = WebPages(inner)
    scopes = [
        {"type": "http", "method": "GET", "path": "/lodash", "headers": [(b"accept", a.encode())]}
        for a in NPM_ACCEPTS
    ] + [
        {"type": "http", "method": "GET", "path": "/lodash/-/lodash-1.0.0.tgz", "headers": [(b"accept", HTML.encode())]},
        {"type": "http", "method": "PUT", "path": "/lodash", "headers": [(b"accept", HTML.encode())]},
        {"type": "http", "method": "GET", "path": "/-/ping", "headers": [(b"accept", HTML.encode())]},
        {"type": "lifespan"},
    ]
    for scope in scopes:
        await layer(scope, None, None)
    assert len(seen) == len(scopes) and all(a is b for a, b in zip(seen, scopes))  # the very same scope objects


@pytest.fixture(scope="module")
def world(client):
    name, password = unique("u"), "pw-" + uuid.uuid4().hex
    token = client.put(f"/-/user/org.couchdb.user:{name}", json=signup_body(name, password)).json()["token"]
    auth = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    pkg = unique("pkg")
    files = {"lib/a.js": "var a = 1;\n", "bad.txt": b"ok \xff\xfe invalid utf-8\n", "blob.bin": b"\x00\x01" * 100,
             "big.js": "x" * (code.MAX_VIEW + 10)}
    body = publish_body(pkg, "1.0.0", {"repository": "github:o/r"}, readme="# Hi\n\n[docs](docs/x.md)\n", files=files)
    assert client.put("/" + pkg, content=json.dumps(body), headers=auth).status_code == 201
    private = f"@{name}/{unique('p')}"
    body = publish_body(private, "1.0.0", access="restricted")
    assert client.put("/" + private.replace("/", "%2f"), content=json.dumps(body), headers=auth).status_code == 201
    return {"pkg": pkg, "private": private, "auth": auth, "user": name}


def test_same_url_json_for_clients_page_for_browsers(client, world):
    pkg = world["pkg"]
    as_json = client.get("/" + pkg, headers={"accept": "application/json"})
    assert as_json.headers["content-type"] == "application/json" and as_json.json()["name"] == pkg
    as_page = client.get("/" + pkg, headers={"accept": HTML})
    assert as_page.headers["content-type"].startswith("text/html")
    assert "accept" in as_page.headers["vary"]
    tarball = client.get(f"/{pkg}/-/{pkg}-1.0.0.tgz", headers={"accept": HTML})
    assert tarball.status_code == 200 and tarball.content[:2] == b"\x1f\x8b"
    head = client.head("/" + pkg, headers={"accept": HTML})
    assert head.status_code == 200 and head.content == b""


class _Checker(HTMLParser):
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
    SVG_VOID = {"path", "polyline", "polygon", "rect", "circle"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.ids, self.errors, self.inline = [], set(), [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            if attrs["id"] in self.ids:
                self.errors.append(f"duplicate id {attrs['id']}")
            self.ids.add(attrs["id"])
        if "style" in attrs or tag == "style" or (tag == "script" and "src" not in attrs):
            self.inline.append(tag)
        if any(a.startswith("on") for a in attrs):
            self.inline.append(f"{tag} handler")
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        if tag not in self.SVG_VOID and tag not in self.VOID:
            self.errors.append(f"self-closed <{tag}/>")

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            if tag in self.stack:
                while self.stack and self.stack.pop() != tag:
                    pass
            return
        self.stack.pop()


def _check_html(text: str) -> None:
    assert text.startswith("<!doctype html>")
    assert re.search(r"<html lang=\"en\">", text)
    assert re.search(r"<title>[^<]+</title>", text)
    assert re.search(r'<meta name="description" content="[^"]+">', text)
    checker = _Checker()
    checker.feed(text)
    checker.close()
    assert not checker.errors, checker.errors[:5]
    assert not checker.stack, checker.stack
    assert not checker.inline, checker.inline


@pytest.mark.parametrize("path", ["/", "/{pkg}", "/{pkg}?tab=versions", "/{pkg}?tab=dependencies",
                                  "/{pkg}?tab=dependents", "/{pkg}?tab=code", "/{pkg}?tab=code&path=lib",
                                  "/{pkg}?tab=code&path=lib/a.js", "/{pkg}?tab=code&path=bad.txt",
                                  "/{pkg}?tab=code&path=blob.bin", "/{pkg}?tab=code&path=big.js",
                                  "/-/web/search?q={pkg}", "/-/web/search?q=keywords:x", "/-/web/user/{user}",
                                  "/nothing-here-{pkg}", "/-/web/org/nothing"])
def test_pages_are_valid_and_strict(client, world, path):
    resp = client.get(path.format(**world), headers={"accept": HTML})
    assert resp.status_code in (200, 404), resp.text[:2000]
    _check_html(resp.text)
    csp = resp.headers["content-security-policy"]
    assert "'unsafe-inline'" not in csp and "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp and "base-uri 'none'" in csp
    assert resp.headers["x-content-type-options"] == "nosniff"


def test_code_tab_caps_and_binary(client, world):
    pkg = world["pkg"]
    bad = client.get(f"/{pkg}?tab=code&path=bad.txt", headers={"accept": HTML}).text
    assert "ok \ufffd\ufffd invalid utf-8" in bad
    assert "Binary file, 200 bytes" in client.get(f"/{pkg}?tab=code&path=blob.bin", headers={"accept": HTML}).text
    big = client.get(f"/{pkg}?tab=code&path=big.js", headers={"accept": HTML}).text
    assert "too large to show" in big and "xxxxxxxxxx" not in big
    missing = client.get(f"/{pkg}?tab=code&path=nope/x.js", headers={"accept": HTML})
    assert missing.status_code == 404
    raw = client.get(f"/{pkg}?tab=code&path=lib/a.js&raw=1", headers={"accept": HTML})
    assert raw.text == "var a = 1;\n" and raw.headers["content-type"] == "text/plain; charset=utf-8"


def test_relative_readme_links_point_at_the_repository(client, world):
    text = client.get("/" + world["pkg"], headers={"accept": HTML}).text
    assert 'href="https://github.com/o/r/blob/HEAD/docs/x.md"' in text


def test_private_package_is_the_missing_page(client, world):
    private = world["private"]
    missing = private + "x"
    anon = client.get("/" + private, headers={"accept": HTML})
    gone = client.get("/" + missing, headers={"accept": HTML})
    assert anon.status_code == gone.status_code == 404
    assert anon.text.replace(private, "N") == gone.text.replace(missing, "N")
    # A bearer token does not make a browser page: the page knows only the session cookie.
    token_only = client.get("/" + private, headers={"accept": HTML, **world["auth"]})
    assert token_only.status_code == 404


def test_static_files_are_versioned_and_immutable(client):
    from ketch.web.templates import static_url

    url = static_url("app.css")
    assert re.fullmatch(r"/-/static/app\.css\?v=[0-9a-f]{12}", url)
    fresh = client.get(url)
    assert fresh.status_code == 200 and "immutable" in fresh.headers["cache-control"]
    assert "immutable" not in client.get("/-/static/app.css?v=old").headers["cache-control"]
    assert client.get("/-/static/..%2fviews.py").status_code == 404


# -- code browser, without a server ---------------------------------------------------------------

def test_listing_is_capped():
    files = {f"f/{i}.js": "" for i in range(code.MAX_ENTRIES + 5)}
    files["package.json"] = "{}"
    listing = code.list_files(make_tarball(files))
    assert listing.truncated and len(listing.files) == code.MAX_ENTRIES


def test_reading_a_file_stops_at_the_cap():
    data = make_tarball({"package.json": "{}", "a.txt": "a" * (3 * code.MAX_VIEW), "b.txt": "b"})
    size, head = code.read_file(data, "a.txt")
    assert size == 3 * code.MAX_VIEW and len(head) == code.MAX_VIEW
    assert code.read_file(data, "b.txt") == (1, b"b")
    assert code.read_file(data, "c.txt") is None
    assert code.view_file("a.txt", size, head).too_large


def test_directory_listing():
    listing = code.list_files(make_tarball({"package.json": "{}", "lib/a.js": "1", "lib/sub/b.js": "22", "x": ""}))
    dirs, files = listing.directory("")
    assert dirs == [("lib", 2)] and [f for f, _ in files] == ["package.json", "x"]
    assert listing.directory("lib") == ([("sub", 1)], [("a.js", 1)])
    assert listing.directory("nope") is None


# -- README sanitising, without a browser ----------------------------------------------------------

@pytest.mark.parametrize("payload", xss_corpus.README_PAYLOADS)
def test_readme_payloads_are_neutralised(payload):
    html = readme.render_markdown(payload, readme.repository_of({"repository": "github:o/r"}))
    lowered = html.lower()
    for bad in ("<script", "<iframe", "<object", "<embed", "<base", "<meta", "<form", "<style", "<svg", "<math",
                "<input", "<template"):
        assert bad not in lowered, (bad, html)
    assert not re.search(r"<[^>]+\s(on\w+|style)\s*=", html), html
    assert not re.search(r"<[^>]+\s(href|src|srcset|action|data)=\"\s*(javascript|vbscript|data):", lowered), html


def test_readme_links_and_images():
    repo = readme.repository_of({"repository": {"url": "git+https://gitlab.com/g/p.git", "directory": "pkgs/a"}})
    html = readme.render_markdown("[a](docs/a.md) ![i](img/x.png) [abs](/LICENSE) [top](#usage) <a href=x.md>x</a>", repo)
    assert 'href="https://gitlab.com/g/p/-/blob/HEAD/pkgs/a/docs/a.md"' in html
    assert 'src="https://gitlab.com/g/p/-/raw/HEAD/pkgs/a/img/x.png"' in html
    assert 'href="https://gitlab.com/g/p/-/blob/HEAD/LICENSE"' in html
    assert 'href="#user-content-usage"' in html
    assert 'href="https://gitlab.com/g/p/-/blob/HEAD/pkgs/a/x.md"' in html
    assert 'rel="nofollow noopener noreferrer"' in html
    bare = readme.render_markdown("![i](x.png) [d](d.md)", None, lambda p: "/pkg?tab=code&path=" + p)
    assert "<img" in bare and "src" not in bare and 'href="/pkg?tab=code&amp;path=d.md"' in bare


def test_repository_urls():
    assert readme.web_url("git+ssh://git@github.com/a/b.git") == "https://github.com/a/b"
    assert readme.web_url("git@github.com:a/b.git") == "https://github.com/a/b"
    assert readme.web_url("github:a/b") == "https://github.com/a/b"
    assert readme.web_url("a/b") == "https://github.com/a/b"
    assert readme.web_url("bitbucket:a/b") == "https://bitbucket.org/a/b"
    for bad in ("javascript:alert(1)", "data:text/html,x", "file:///etc/passwd", 'https://x.test/"><b>', 42, None):
        assert readme.web_url(bad) is None
    assert readme.http_url("javascript:alert(1)") is None
    assert readme.http_url({"url": "https://x.test/issues"}) == "https://x.test/issues"


def test_sparkline_points():
    from ketch.web.data import DownloadFigures

    assert DownloadFigures(0, [0] * 52, 0).sparkline() is None
    line, area = DownloadFigures(5, [0, 10, 5], 0).sparkline()
    assert line == "0.0,29.0 50.0,1.0 100.0,15.0"
    assert area.startswith("0,30 ") and area.endswith(" 100,30")


def test_sparkline_shows_todays_partial_day(tmp_path):
    """Downloads counted today draw the sparkline at once; the weekly figure stays npm's last-week
    (complete days), which does not include them yet."""
    import asyncio

    from ketch.config import Settings
    from ketch.db import Database
    from ketch.db.migrate import upgrade
    from ketch.stats import periods
    from ketch.stats.services import add_downloads
    from ketch.web.data import download_figures

    settings = Settings(data_dir=tmp_path)
    upgrade(settings.resolved_database_url)

    async def figures_after_downloads_today():
        db = Database(settings.resolved_database_url)
        try:
            async with db.write() as session:
                await add_downloads(db, session, {("fresh-pkg", "1.0.0", periods.today()): 3})
            return await download_figures({}, db.read, "fresh-pkg")
        finally:
            await db.dispose()

    figures = asyncio.run(figures_after_downloads_today())
    assert figures.weeks[-1] == 3 and figures.weekly == 0
    assert figures.sparkline() is not None
