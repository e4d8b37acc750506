"""The website in Debian's Chromium: search, open a package, browse its code; keyboard use; the XSS
corpus; private pages; screenshots of the main pages at desktop and phone width (tests/web/artifacts/)."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from tests.web import xss_corpus
from tests.web.conftest import DESKTOP, PHONE, check_clean, login, shoot
from tests.web.support import unique

README = """# {name}

A tiny library that **adds numbers**. See [the guide](docs/guide.md) and the [API](#api).

## Install

```sh
npm install {name}
```

## API

```js
const add = require('{name}');
console.log(add(2, 3)); // 5
```

| Option | Default | Meaning |
|--------|---------|---------|
| `strict` | `false` | throw on non-numbers |
| ~~`legacy`~~ | – | removed in 2.0 |

> Numbers are hard.
"""


@pytest.fixture(scope="module")
def demo(site):
    """A small world: a user, an org-less package with two versions and a dependent."""
    user = site.signup("alice")
    name = unique("adder")
    manifest = {"keywords": ["math", "numbers", "add"], "repository": {"type": "git", "url": "git+https://github.com/example/adder.git"},
                "homepage": "https://example.test/adder", "bugs": {"url": "https://github.com/example/adder/issues"},
                "author": "Alice Example <alice@example.test>", "dependencies": {"left-pad": "^1.3.0"},
                "devDependencies": {"tap": "^16.0.0"}}
    files = {"lib/add.js": "'use strict';\n/** Add two numbers. */\nmodule.exports = function add(a, b) {\n  return a + b;\n};\n",
             "docs/guide.md": "# Guide\n", "logo.bin": bytes(range(256)) * 4}
    site.publish(user, name, "1.0.0", dict(manifest), readme=README.format(name=name), files=files)
    site.publish(user, name, "1.1.0", dict(manifest), readme=README.format(name=name), files=files)
    dependent = unique("calc")
    site.publish(user, dependent, "0.1.0", {"description": "A calculator built on " + name,
                                             "dependencies": {name: "^1.1.0"}})
    return {"user": user, "name": name, "dependent": dependent}


def _no_injected_markup(page) -> None:
    """What a sanitiser must never let through, checked in the live DOM."""
    found = page.evaluate("""() => {
      const bad = [];
      for (const s of document.querySelectorAll('script')) {
        if (!(s.getAttribute('src') || '').startsWith('/-/static/')) bad.push('script: ' + s.outerHTML.slice(0, 80));
      }
      for (const el of document.querySelectorAll('*')) {
        for (const a of el.attributes) {
          if (a.name.startsWith('on')) bad.push('handler ' + a.name + ' on ' + el.tagName);
          if (['href', 'src', 'action', 'formaction', 'data', 'srcset'].includes(a.name) && /^\\s*(javascript|vbscript|data):/i.test(a.value))
            bad.push(a.name + '=' + a.value.slice(0, 60));
          if (a.name === 'style') bad.push('style attribute on ' + el.tagName);
        }
      }
      for (const sel of ['iframe', 'object', 'embed', 'base', 'meta[http-equiv]', 'template', 'style', 'svg script', 'main form:not([role=search])'])
        for (const el of document.querySelectorAll(sel)) bad.push('element ' + sel);
      return bad;
    }""")
    assert not found, found


def test_search_open_package_and_browse_code(site, demo, page):
    name = demo["name"]
    page.goto(site.url + "/")
    assert page.title().startswith("Ketch")
    shoot(page, "home-desktop")
    page.fill("#home-q", name)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/-/web/search\?q="))
    assert page.locator("ol.results > li").count() >= 1
    shoot(page, "search-desktop")
    page.locator("ol.results a.name", has_text=re.compile("^" + re.escape(name) + "$")).first.click()
    page.wait_for_url(site.url + "/" + name)
    assert page.locator(".pkg-head h1").inner_text() == name
    readme = page.locator("article.readme")
    assert readme.locator("h2", has_text="API").count() == 1
    assert readme.locator("table").count() == 1
    assert readme.locator("pre.hl span.nx").count() > 0  # Pygments highlighted the JS block
    assert readme.locator("a", has_text="the guide").get_attribute("href") == \
        "https://github.com/example/adder/blob/HEAD/docs/guide.md"
    assert page.locator(".facts dd").first.inner_text() == "1.1.0"
    assert page.locator("a.tag", has_text="numbers").count() == 1
    shoot(page, "package-desktop")

    page.locator("nav.tabs a", has_text="Code").click()
    page.wait_for_url(re.compile(r"tab=code"))
    page.locator(".files a.dir", has_text="lib/").click()
    page.locator(".files a.file", has_text="add.js").click()
    page.wait_for_url(re.compile(r"path=lib%2Fadd\.js"))
    assert page.locator("table.code tr").count() == 5
    assert page.locator("table.code span.k, table.code span.kd, table.code span.s1").count() > 0
    shoot(page, "code-desktop")
    page.goto(f"{site.url}/{name}?tab=code&path=logo.bin")
    assert "Binary file, 1,024 bytes" in page.locator(".viewer").inner_text()

    page.locator("nav.tabs a", has_text="Versions").click()
    assert page.locator("table.data").nth(1).locator("tbody tr").count() == 2
    shoot(page, "versions-desktop")
    page.locator("nav.tabs a", has_text="Dependencies").click()
    assert page.locator(".dep-grid a", has_text="left-pad").count() == 1
    assert page.locator("h2", has_text="Development dependencies").count() == 1
    page.locator("nav.tabs a", has_text="Dependents").click()
    page.locator(".dep-grid a", has_text=demo["dependent"]).click()
    page.wait_for_url(site.url + "/" + demo["dependent"])
    check_clean(page)


def test_keyboard_navigation_of_search_results(site, demo, page):
    page.goto(f"{site.url}/-/web/search?q=" + quote(demo["name"]))
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "header-q"
    page.keyboard.press("ArrowDown")
    first = page.evaluate("document.activeElement.textContent")
    assert page.locator("ol.results > li.selected").count() == 1
    assert first == page.locator("ol.results a.name").first.inner_text()
    count = page.locator("ol.results > li").count()
    if count > 1:
        page.keyboard.press("j")
        assert page.evaluate("document.activeElement.textContent") == page.locator("ol.results a.name").nth(1).inner_text()
        page.keyboard.press("k")
    page.keyboard.press("Enter")
    page.wait_for_url(site.url + "/" + first)
    # Tabs are reachable with Tab, and the skip link comes first.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    check_clean(page)


def test_install_box_tabs_and_copy(site, demo, browser, make_page):
    page = make_page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    page.goto(f"{site.url}/{demo['name']}")
    assert page.locator("#install-npm").is_visible()
    assert not page.locator("#install-pnpm").is_visible()
    page.locator("#tab-pnpm").click()
    assert page.locator("#install-pnpm").is_visible() and not page.locator("#install-npm").is_visible()
    page.keyboard.press("ArrowRight")
    assert page.locator("#install-yarn").is_visible()
    page.locator("#install-yarn button.copy").click()
    page.wait_for_function("document.querySelector('#install-yarn button.copy').textContent === 'Copied'")
    assert page.evaluate("navigator.clipboard.readText()") == f"yarn add {demo['name']}"
    check_clean(page)


def test_xss_corpus_never_executes(site, page):
    user = site.signup("mallory")
    name = unique("xss")
    files = {fname: xss_corpus.FILE_CONTENT for fname in xss_corpus.FILE_NAMES}
    site.publish(user, name, "1.0.0", {"description": xss_corpus.DESCRIPTION, "keywords": xss_corpus.KEYWORDS,
                                       "author": xss_corpus.AUTHOR, "homepage": "javascript:alert('homepage')",
                                       "repository": "javascript:alert('repo')", "bugs": "javascript:alert('bugs')"},
                 readme=xss_corpus.readme(), files=files)
    assert xss_corpus.count() >= 30
    evil_file = quote(xss_corpus.FILE_NAMES[0], safe="")
    pages = [f"/{name}", f"/{name}?tab=code", f"/{name}?tab=code&path=lib",
             f"/{name}?tab=code&path={evil_file}", f"/{name}?tab=code&path=page.html",
             f"/{name}?tab=versions", f"/{name}?tab=dependencies",
             "/-/web/search?q=" + quote(name), "/-/web/search?q=" + quote("keywords:<svg onload=alert(1)>"),
             "/", f"/-/web/user/{user.name}",
             "/" + quote("<script>alert('404')</script>", safe="")]
    for path in pages:
        page.goto(site.url + path)
        page.wait_for_load_state("load")
        _no_injected_markup(page)
        # Hover and click every README/file link that is left: none may run anything.
        for link in page.locator("article.readme a[href]").all()[:40]:
            href = link.get_attribute("href") or ""
            assert not re.match(r"\s*(javascript|vbscript|data):", href, re.I), href
    page.goto(f"{site.url}/{name}")
    assert page.locator("article.readme").inner_text().startswith("XSS corpus")
    assert page.locator(".pkg-head .description").inner_text() == xss_corpus.DESCRIPTION  # shown as text
    assert page.locator("a.tag", has_text="<svg onload").count() == 1
    assert page.locator(".side-links").count() == 0  # javascript: homepage/repository/bugs are dropped
    page.goto(f"{site.url}/{name}?tab=code")
    assert page.locator(".files a", has_text=xss_corpus.FILE_NAMES[0]).count() == 1
    raw = page.request.get(f"{site.url}/{name}?tab=code&path=page.html&raw=1", headers={"accept": "text/html"})
    assert raw.headers["content-type"].startswith("text/plain")
    assert raw.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in raw.headers["content-security-policy"]
    shoot(page, "xss-code-listing")
    check_clean(page)


def test_private_package_page_only_for_readers(site, make_page):
    owner = site.signup("owner")
    outsider = site.signup("outsider")
    name = f"@{owner.name}/{unique('secret')}"
    site.publish(owner, name, "1.0.0", {"description": "top secret"}, access="restricted")
    missing = f"@{owner.name}/{unique('missing')}"
    anon = site.page_html("/" + name)
    gone = site.page_html("/" + missing)
    assert anon.status_code == gone.status_code == 404
    assert anon.text.replace(name, "NAME") == gone.text.replace(missing, "NAME")
    assert "top secret" not in anon.text

    page = make_page()
    login(page, site, outsider)
    response = page.goto(f"{site.url}/{name}")
    assert response.status == 404 and "top secret" not in page.content()
    page = make_page()
    login(page, site, owner)
    response = page.goto(f"{site.url}/{name}")
    assert response.status == 200
    assert page.locator(".pkg-head .pill.private").count() == 1
    assert page.locator(".site-nav").inner_text().count(owner.name) == 1
    page.goto(f"{site.url}/-/web/user/{owner.name}")
    assert page.locator(".pkg-list a.name", has_text=name).count() == 1
    check_clean(page)


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_screenshots_and_layout(site, demo, make_page, width):
    viewport = DESKTOP if width == "desktop" else PHONE
    page = make_page(viewport=viewport)
    name = demo["name"]
    shots = {"home": "/", "search": "/-/web/search?q=" + quote(name), "package": f"/{name}",
             "code": f"/{name}?tab=code&path=lib%2Fadd.js", "versions": f"/{name}?tab=versions",
             "user": f"/-/web/user/{demo['user'].name}", "not-found": "/" + unique("nothing")}
    for label, path in shots.items():
        page.goto(site.url + path)
        # Nothing may stick out sideways on a phone: the page scrolls vertically only.
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{label} overflows by {overflow}px at {width} width"
        assert page.locator("meta[name=description]").get_attribute("content")
        shoot(page, f"{label}-{width}")
    dark = make_page(viewport=viewport, color_scheme="dark")
    dark.goto(f"{site.url}/{name}")
    bg = dark.evaluate("getComputedStyle(document.body).backgroundColor")
    assert bg == "rgb(13, 17, 23)", bg
    shoot(dark, f"package-{width}-dark")
    check_clean(page)
    check_clean(dark)


def test_org_page(site, make_page):
    owner, member = site.signup("boss"), site.signup("dev")
    org = unique("org")
    with site.http() as c:
        assert c.put(f"/-/org/{org}", headers=owner.auth).status_code == 201
        assert c.put(f"/-/org/{org}/user", json={"user": member.name, "role": "developer"},
                     headers=owner.auth).status_code in (200, 201)
        assert c.put(f"/-/org/{org}/team", json={"name": "core", "description": "The core team"},
                     headers=owner.auth).status_code in (200, 201)
    public, private = f"@{org}/{unique('lib')}", f"@{org}/{unique('internal')}"
    site.publish(owner, public, "1.0.0", {"description": "Public library of the org"})
    site.publish(owner, private, "1.0.0", {"description": "Internal only"}, access="restricted")

    anon = make_page()
    anon.goto(f"{site.url}/-/web/org/{org}")
    assert anon.locator("h1").inner_text() == f"@{org}"
    names = anon.locator(".pkg-list a.name").all_inner_texts()
    assert names == [public]
    assert anon.locator("#members-title").count() == 0 and member.name not in anon.content()

    page = make_page()
    login(page, site, owner)
    page.goto(f"{site.url}/-/web/org/{org}")
    assert sorted(page.locator(".pkg-list a.name").all_inner_texts()) == sorted([public, private])
    members = page.locator("ul[aria-labelledby=members-title] li").all_inner_texts()
    assert any(member.name in m and "developer" in m for m in members)
    teams = page.locator("ul[aria-labelledby=teams-title] li").all_inner_texts()
    assert any(t.startswith("core") and "The core team" in t for t in teams), teams
    assert page.locator("a", has_text="Manage organization").get_attribute("href") == f"/-/web/org/{org}/settings"
    shoot(page, "org-desktop")
    page.set_viewport_size(PHONE)
    shoot(page, "org-phone")
    page.goto(f"{site.url}/-/web/user/{owner.name}")
    assert page.locator(".card-list a", has_text=f"@{org}").count() == 1
    check_clean(page)
    check_clean(anon)
