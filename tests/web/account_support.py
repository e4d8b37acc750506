"""Support for the browser tests of the account and management pages: the real ``ketch serve``,
npm and SMTP sink of the end-to-end tests (from tests/support), Debian's Chromium under Playwright,
and screenshots.

Chromium runs headless with no network but loopback: every page these tests open is on the local
registry, and the registry's pages load nothing from elsewhere.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.accounts import Authenticator, MailSink, finish, link_in  # noqa: F401
from tests.support.clients import Npm, write_json  # noqa: F401
from tests.support.registry import RegistryServer, ServerFactory, own_registry  # noqa: F401
from tests.support.server import unique  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium", pytrace=False)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


# -- fixtures the test modules import: ``from account_support import browser, page, sink`` ---------

@pytest.fixture(scope="module")
def sink() -> Iterator[MailSink]:
    """A local SMTP server for the module's own registry (``own_registry(base, sink)``)."""
    with MailSink() as s:
        yield s


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser):
    """A desktop-sized page in a fresh context; what it must never show fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    watch = Watch(page)
    yield page
    context.close()
    watch.assert_clean()


class Watch:
    """Collects what a page must never show: console errors (a CSP violation is one) and
    uncaught exceptions."""

    def __init__(self, page) -> None:
        self.problems: list[str] = []
        # A form answered with 4xx is a page like any other; a stylesheet or script that fails is not.
        page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}")
                if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
        page.on("response", lambda r: self.problems.append(f"{r.status} for {r.request.resource_type} {r.url}")
                if r.status >= 400 and r.request.resource_type != "document" else None)
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))

    def assert_clean(self) -> None:
        assert not self.problems, "\n".join(self.problems)


def shoot(page, name: str) -> None:
    """Screenshots of the current page at desktop and phone width, in tests/web/artifacts/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(ARTIFACTS / f"{name}-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(ARTIFACTS / f"{name}-phone.png"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    wide = page.evaluate("""(limit) => Array.from(document.querySelectorAll('body *'))
        .filter(e => e.getBoundingClientRect().right + window.scrollX > limit + 1
                     && !(e.parentElement && e.parentElement.closest('.acct-table-wrap, .table-wrap, .acct-tabs ul')))
        .concat(Array.from(document.querySelectorAll('body *')).filter(e => e.scrollWidth > e.clientWidth + 1
                && getComputedStyle(e).overflowX === 'visible' && e.clientWidth > 0))
        .slice(0, 8).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right + window.scrollX))""",
                         PHONE["width"])
    assert width <= PHONE["width"], f"{name}: the page is {width}px wide at phone width: {wide}"
    page.set_viewport_size(size or DESKTOP)


def login(page, base: str, name: str, password: str, authenticator: Authenticator | None = None) -> None:
    page.goto(f"{base}-/web/login")
    page.fill("#username", name)
    page.fill("#password", password)
    page.click("form.acct-form button[type=submit]")
    if authenticator is not None:
        page.wait_for_selector("#otp")
        page.fill("#otp", authenticator.code())
        page.click("form.acct-form:has(#otp) button[type=submit]")
    page.wait_for_url(re.compile(r"/-/web/settings"))


def logout(page, base: str) -> None:
    page.goto(f"{base}-/web/logout")
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r"/-/web/login"))


def new_package(root: Path, name: str, version: str = "1.0.0") -> Path:
    path = root / re.sub(r"[^a-z0-9]+", "-", name) / version
    path.mkdir(parents=True)
    write_json(path / "package.json", {"name": name, "version": version, "description": "web test package",
                                       "license": "MIT", "main": "index.js"})
    (path / "index.js").write_text("module.exports = 42;\n")
    return path
