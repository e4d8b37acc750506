"""Jinja2 environment shared by every domain's pages (autoescaping on), the static files under
``/-/static/``, and the security headers every page carries.

Static URLs carry a content hash (``/-/static/app.css?v=3f2a…``): with the current hash they are
served ``immutable`` for a year, so a browser fetches each file once per release.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path

from starlette.templating import Jinja2Templates

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
STATIC_PREFIX = "/-/static/"
_STATIC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$")

templates = Jinja2Templates(directory=str(HERE / "templates"))

# Pages are server-rendered without inline scripts or styles (every script and stylesheet is a file
# under /-/static/), so the policy can be strict. README images may come from any https origin.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https:; "
                               "connect-src 'self'; manifest-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                               "base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    digest: str
    media_type: str
    mtime: float


_static: dict[str, StaticFile] = {}


def static_file(name: str) -> StaticFile | None:
    """The file ``name`` of the static directory (re-read when it changes on disk), or None."""
    if not _STATIC_NAME.match(name):
        return None
    path = STATIC_DIR / name
    try:
        mtime = path.stat().st_mtime
    except OSError:
        _static.pop(name, None)
        return None
    cached = _static.get(name)
    if cached is not None and cached.mtime == mtime:
        return cached
    body = path.read_bytes()
    media = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if media.startswith("text/") or media in ("application/javascript", "image/svg+xml"):
        media += "; charset=utf-8"
    found = StaticFile(body, hashlib.sha256(body).hexdigest()[:12], media, mtime)
    _static[name] = found
    return found


def static_url(name: str) -> str | None:
    """``/-/static/<name>?v=<hash>``, or None when there is no such file (templates skip the tag)."""
    found = static_file(name)
    return None if found is None else f"{STATIC_PREFIX}{name}?v={found.digest}"


def viewer_of(request) -> object | None:
    """The logged-in identity of a browser request, once :func:`ketch.accounts.web_session.current_identity`
    has looked it up during this request (it keeps its answer in the request scope)."""
    return request.scope.get("ketch.web_identity") if request is not None else None


def registry_url(request) -> str:
    """The registry URL as this browser reached it (the configured public URL when set)."""
    from ketch.context import base_url

    try:
        return base_url(request) + "/"
    except Exception:  # a request without the app's context (never on a served page)
        return str(request.base_url)


templates.env.globals["static"] = static_url
templates.env.globals["site_url"] = registry_url
templates.env.globals["viewer_of"] = viewer_of
