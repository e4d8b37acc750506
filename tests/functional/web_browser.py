"""A minimal "browser" over the functional tests' in-process client: its own cookie jar (so several
users can be logged in at once on one app), CSRF tokens read from the page, forms posted as a
browser posts them, redirects not followed (the tests look at them)."""

from __future__ import annotations

import html
import re
from http.cookies import SimpleCookie

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


class Browser:
    def __init__(self, client, *, scheme: str = "http"):
        self.client = client
        self.jar: dict[str, str] = {}
        self.base = f"{scheme}://testserver"
        self.last_set_cookies: list[str] = []

    def request(self, method: str, path: str, data: dict | None = None, headers: dict | None = None):
        self.client.cookies.clear()
        h = {"user-agent": "Mozilla/5.0 (functional test)", **(headers or {})}
        if self.jar:
            h["cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        resp = self.client.request(method, self.base + path, data=data, headers=h, follow_redirects=False)
        self.client.cookies.clear()
        self.last_set_cookies = resp.headers.get_list("set-cookie")
        for raw in self.last_set_cookies:
            cookie = SimpleCookie()
            cookie.load(raw)
            for key, morsel in cookie.items():
                if morsel["max-age"] == "0" or morsel.value in ("", '""'):
                    self.jar.pop(key, None)
                else:
                    self.jar[key] = morsel.value
        return resp

    def get(self, path: str, **kw):
        return self.request("GET", path, **kw)

    def post(self, path: str, data: dict, **kw):
        return self.request("POST", path, data=data, **kw)

    def csrf(self, path: str) -> str:
        resp = self.get(path)
        return csrf_of(resp.text)

    def submit(self, path: str, data: dict, page: str | None = None):
        """GET ``page`` (default: ``path``) for its CSRF token, then POST ``data`` with it."""
        token = self.csrf(page or path)
        return self.post(path, {"csrf": token, **data})

    def set_cookie_header(self, name: str) -> str | None:
        return next((c for c in self.last_set_cookies if c.startswith(name + "=")), None)


def csrf_of(text: str) -> str:
    found = _CSRF.search(text)
    assert found, "no CSRF field on the page"
    return found.group(1)


def hidden(text: str, name: str) -> str | None:
    for key, value in _HIDDEN.findall(text):
        if key == name:
            return html.unescape(value)
    return None
