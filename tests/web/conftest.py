"""Website test fixtures: a real ``ketch serve`` on a loopback port and Debian's Chromium driven by
Playwright (never a downloaded browser).

* ``site``: one server per pytest(-xdist) worker, with helpers to sign up users and publish
  packages over the registry's own HTTP API. Tests isolate themselves with fresh names.
* ``browser``: one headless Chromium per test module (``/usr/bin/chromium``, fresh profile directory).
* ``page``: a fresh browser context and page per test. Every request to anything but the test
  server is aborted (and Chromium's proxy is a dead loopback port), so no test reaches the network.
  ``page.problems`` collects JavaScript dialogs, page errors and console errors; ``check_clean``
  fails the test if any appeared.
* ``shoot(page, name)``: saves a screenshot to ``tests/web/artifacts/`` (git-ignored).
* ``login(page, user)``: logs the browser in through the site's login form.

In-process tests (no browser) use ``client``: Starlette's TestClient over a fresh data directory.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.support.server import NO_RATE_LIMITS, ServerProcess, User
from tests.web.support import HTML, publish_body, signup_body, unique

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--dns-prefetch-disable", "--proxy-server=http://127.0.0.1:9"]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


class Site(ServerProcess):
    """A running ``ketch serve`` and HTTP helpers against it."""

    def __init__(self, data_dir: Path, log_path: Path):
        self.data_dir = data_dir
        self.log_path = log_path
        self.port = 0
        self.proc = None

    @property
    def url(self) -> str:
        return self.base_url

    def server_env(self) -> dict[str, str]:
        return {**super().server_env(), **NO_RATE_LIMITS}

    def http(self, **kw) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, trust_env=False, **kw)

    def signup(self, prefix: str = "u") -> User:
        name, password = unique(prefix), "pw-" + uuid.uuid4().hex
        with self.http() as c:
            r = c.put(f"/-/user/org.couchdb.user:{quote(name, safe='')}", json=signup_body(name, password))
        assert r.status_code == 201, r.text
        return User(name, password, r.json()["token"])

    def publish(self, user: User, name: str, version: str = "1.0.0", manifest: dict | None = None, **kw) -> None:
        body = publish_body(name, version, manifest, **kw)
        with self.http() as c:
            r = c.put("/" + name.replace("/", "%2f"), content=json.dumps(body).encode(),
                      headers={**user.auth, "content-type": "application/json"})
        assert r.status_code in (200, 201), f"publish {name}@{version}: {r.status_code} {r.text}"

    def page_html(self, path: str, user_headers: dict | None = None) -> httpx.Response:
        with self.http() as c:
            return c.get(path, headers={"accept": HTML, **(user_headers or {})})


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Site:
    base = tmp_path_factory.mktemp("web-site")
    server = Site(base / "data", base / "server.log")
    server.start()
    yield server
    server.stop()


# -- the browser ---------------------------------------------------------------------------------

# Module scope, not session: only one sync Playwright may run in a process at a time, and a test
# module that starts its own (tests/web/test_account_pages.py does) must find none running.
@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: scripts/test installs Debian's chromium package", pytrace=False)
    from playwright.sync_api import sync_playwright

    # launch() gives Chromium a fresh temporary profile directory of its own, removed on close.
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def _only_loopback(site: Site):
    allowed = (site.url + "/", site.url)

    def handler(route):
        url = route.request.url
        if url.startswith(allowed) or url.startswith(("data:", "blob:", "about:")):
            return route.continue_()
        return route.abort("blockedbyclient")
    return handler


@pytest.fixture
def make_page(browser, site):
    """``make_page(viewport=…, color_scheme=…)``: a page in a fresh context, with problem tracking."""
    contexts = []

    def make(viewport: dict | None = None, color_scheme: str = "light"):
        context = browser.new_context(viewport=viewport or DESKTOP, color_scheme=color_scheme,
                                      service_workers="block")
        context.route("**/*", _only_loopback(site))
        contexts.append(context)
        page = context.new_page()
        problems: list[str] = []

        def on_dialog(dialog):
            problems.append(f"dialog {dialog.type}: {dialog.message}")
            dialog.dismiss()

        def on_console(msg):
            if msg.type == "error":
                text = msg.text
                # Blocked off-site README images are expected: the test aborts every request off loopback.
                if "ERR_BLOCKED_BY_CLIENT" in text:
                    return
                # A page the test opened on purpose that answers 404 (its own document, not a sub-resource).
                if "status of 404" in text and (msg.location or {}).get("url") == page.url:
                    return
                problems.append(f"console error: {text}")

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("console", on_console)
        page.problems = problems
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(make_page):
    return make_page()


def check_clean(page) -> None:
    assert not page.problems, "\n".join(page.problems)


def shoot(page, name: str, full_page: bool = True) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def login(page, site: Site, user: User) -> None:
    page.goto(f"{site.url}/-/web/login")
    page.fill("input[name=username]", user.name)
    page.fill("input[name=password]", user.password)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_load_state()
    cookies = {c["name"] for c in page.context.cookies()}
    assert "ketch_session" in cookies, f"login of {user.name} did not set a session: {page.content()[:2000]}"


# -- in-process ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from starlette.testclient import TestClient

    from ketch.app import create_app
    from ketch.config import Settings
    from ketch.db.migrate import upgrade

    settings = Settings(data_dir=tmp_path_factory.mktemp("web-inproc"))
    upgrade(settings.resolved_database_url)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c
