"""README rendering: Markdown → HTML that is safe to put on the registry's own origin.

1. markdown-it-py, CommonMark plus tables and strikethrough; raw HTML in the Markdown is kept at
   this stage (READMEs use it for badges and centred logos) and sanitised in step 3.
2. Fenced code is highlighted by Pygments into ``<span class="…">`` token classes (no inline styles:
   the page's Content-Security-Policy allows none); headings get GitHub-style anchors.
3. nh3 (the ammonia sanitiser) keeps an allow-list of tags, attributes, classes and URL schemes
   (http, https, mailto). Relative links and images are resolved against the package's repository
   (GitHub, GitLab and Bitbucket blob/raw conventions); without a repository, relative links open
   the file in the Code tab and relative images are dropped (they cannot be served safely here).
   Element ids get a ``user-content-`` prefix so a README cannot clobber the page's own ids.

Rendered HTML is cached in memory per (package, version, README digest, repository), bounded by
entries: rendering is pure, so a cache entry is correct on every node.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit

import nh3
from markdown_it import MarkdownIt
from pygments import highlight as pygments_highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

MAX_README = 512 * 1024  # characters rendered; the rest is cut (the stored README is at most 1 MiB)
MAX_HIGHLIGHT = 64 * 1024  # characters per fenced block that get highlighted; longer ones stay plain
CACHE_ENTRIES = 512

TOKEN_CLASSES = frozenset(c for c in STANDARD_TYPES.values() if c)
_FORMATTER = HtmlFormatter(nowrap=True)

TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "details", "div", "dl", "dt", "em",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "picture",
    "pre", "q", "rp", "rt", "ruby", "s", "samp", "small", "source", "span", "strike", "strong", "sub", "summary",
    "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "u", "ul", "var",
}
# Tags whose content goes too (not just the tag): nothing of a script or style survives as text.
CLEAN_CONTENT = {"script", "style", "template", "noscript", "iframe", "object", "embed", "noembed", "noframes",
                 "math", "svg", "textarea", "title", "xmp", "select"}
ATTRIBUTES = {
    "*": {"id", "title", "lang", "dir", "align"},
    "a": {"href", "name"},
    "img": {"src", "alt", "width", "height"},
    "source": {"srcset", "media", "type"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "ol": {"start", "type"},
    "li": {"value"},
    "details": {"open"},
}  # "class" is governed by CLASSES (nh3 refuses it in both)
CLASSES = {"span": set(TOKEN_CLASSES), "pre": {"hl"}, "code": {"hl"}}
SCHEMES = {"http", "https", "mailto"}
ID_PREFIX = "user-content-"

_SLUG_DROP = re.compile(r"[^\w\- ]", re.UNICODE)
_SCP = re.compile(r"^(?:[\w.-]+@)?([\w.-]+\.[a-z]{2,}):(.+)$", re.IGNORECASE)


# -- repository URLs --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Repository:
    """A repository web URL (``https://github.com/o/r``) with its host's file URL conventions."""
    web: str
    host: str
    directory: str = ""  # the package's folder inside a monorepo

    def _path(self, path: str) -> str:
        joined = path.lstrip("/") if path.startswith("/") else "/".join(filter(None, [self.directory, path]))
        return quote(joined, safe="/#?=&%.-_~+@")

    def link(self, path: str) -> str:
        if self.host == "github.com":
            return f"{self.web}/blob/HEAD/{self._path(path)}"
        if self.host == "gitlab.com":
            return f"{self.web}/-/blob/HEAD/{self._path(path)}"
        if self.host == "bitbucket.org":
            return f"{self.web}/src/HEAD/{self._path(path)}"
        return urljoin(self.web.rstrip("/") + "/", self._path(path))

    def image(self, path: str) -> str:
        if self.host == "github.com":
            owner_repo = self.web.split("github.com/", 1)[1]
            return f"https://raw.githubusercontent.com/{owner_repo}/HEAD/{self._path(path)}"
        if self.host == "gitlab.com":
            return f"{self.web}/-/raw/HEAD/{self._path(path)}"
        if self.host == "bitbucket.org":
            return f"{self.web}/raw/HEAD/{self._path(path)}"
        return self.link(path)


def repository_of(manifest: dict) -> Repository | None:
    """The repository of a manifest's ``repository`` field, normalised to an https web URL."""
    raw = manifest.get("repository")
    directory = ""
    if isinstance(raw, dict):
        directory = raw.get("directory") if isinstance(raw.get("directory"), str) else ""
        raw = raw.get("url")
    url = web_url(raw)
    if url is None:
        return None
    host = urlsplit(url).hostname or ""
    parts = [p for p in directory.split("/") if p and p not in (".", "..")]
    return Repository(url, host, "/".join(parts))


def web_url(raw: object) -> str | None:
    """``git+https://github.com/o/r.git``, ``git@github.com:o/r``, ``github:o/r``, ``o/r`` … → an
    https URL; None for anything that is not a plain http(s) location in the end."""
    if not isinstance(raw, str):
        return None
    url = raw.strip()
    if not url or len(url) > 500 or any(c in url for c in " \t\r\n\"'<>\\`"):
        return None
    for prefix, host in (("github:", "github.com"), ("gitlab:", "gitlab.com"), ("bitbucket:", "bitbucket.org")):
        if url.startswith(prefix):
            url = f"https://{host}/{url[len(prefix):]}"
            break
    else:
        if re.fullmatch(r"[\w.-]+/[\w.-]+", url):
            url = f"https://github.com/{url}"
        elif url.startswith("git+"):
            url = url[4:]
        scp = _SCP.match(url)
        if scp and "://" not in url:
            url = f"https://{scp.group(1)}/{scp.group(2)}"
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("git", "ssh", "git+ssh"):
        host = parts.hostname
        if not host:
            return None
        url = f"https://{host}{parts.path}"
    elif scheme not in ("http", "https"):
        return None
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    path = parts.path.rstrip("/")
    if path.endswith(".git"):
        path = path[:-4]
    scheme = "https" if parts.hostname in ("github.com", "gitlab.com", "bitbucket.org") else parts.scheme.lower()
    return f"{scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{path}"


def http_url(raw: object) -> str | None:
    """An http(s) URL from a manifest field (homepage, bugs.url), or None: never javascript: and co."""
    if isinstance(raw, dict):
        raw = raw.get("url")
    if not isinstance(raw, str):
        return None
    url = raw.strip()
    if len(url) > 1000 or any(c in url for c in " \t\r\n\"'<>\\`"):
        return None
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


# -- markdown ------------------------------------------------------------------------------------------

def _highlight(code: str, lang: str, _attrs) -> str:
    if not lang or len(code) > MAX_HIGHLIGHT:
        return ""
    try:
        lexer = get_lexer_by_name(lang.split()[0].lower(), stripnl=False)
    except (ClassNotFound, ValueError):
        return ""
    return f'<pre class="hl"><code>{pygments_highlight(code, lexer, _FORMATTER)}</code></pre>'


def _slug(text: str) -> str:
    return _SLUG_DROP.sub("", text.strip().lower()).replace(" ", "-")[:80]


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False, "highlight": _highlight})
    md.enable(["table", "strikethrough"])
    md.validateLink = lambda url: True  # schemes are checked once, by nh3, for Markdown and raw HTML alike

    def heading_open(renderer, tokens, idx, options, env):
        inline = tokens[idx + 1] if idx + 1 < len(tokens) else None
        if inline is not None and inline.type == "inline":
            slug = _slug("".join(c.content for c in (inline.children or []) if c.type in ("text", "code_inline")))
            if slug:
                seen = env.setdefault("slugs", {})
                n = seen.get(slug, 0)
                seen[slug] = n + 1
                tokens[idx].attrSet("id", slug if n == 0 else f"{slug}-{n}")
        return renderer.renderToken(tokens, idx, options, env)

    md.add_render_rule("heading_open", heading_open)
    return md


_MD = _markdown()


def _attribute_filter(repo: Repository | None, code_link):
    def resolve(tag: str, attr: str, value: str) -> str | None:
        if attr in ("id", "name"):
            return value[:100]
        if attr not in ("href", "src", "srcset"):
            return value
        url = value.strip()
        if attr == "srcset":
            return None if repo is None or "," in url else _image(repo, url)
        if url.startswith("#"):
            return "#" + ID_PREFIX + url[1:] if url[1:] else None
        parts = urlsplit(url)
        if parts.scheme or url.startswith("//"):
            return url if parts.scheme.lower() in SCHEMES else None
        if tag == "img":
            return None if repo is None else _image(repo, url)
        if repo is not None:
            return repo.link(url)
        return code_link(parts.path) if parts.path and code_link else None
    return resolve


def _image(repo: Repository, url: str) -> str | None:
    if urlsplit(url).scheme:
        return url if urlsplit(url).scheme.lower() in ("http", "https") else None
    return repo.image(url)


def sanitize(html: str, repo: Repository | None = None, code_link=None) -> str:
    return nh3.clean(
        html, tags=TAGS, clean_content_tags=CLEAN_CONTENT, attributes=ATTRIBUTES,
        attribute_filter=_attribute_filter(repo, code_link), strip_comments=True,
        link_rel="nofollow noopener noreferrer", url_schemes=SCHEMES, allowed_classes=CLASSES, id_prefix=ID_PREFIX,
    )


def render_markdown(text: str, repo: Repository | None = None, code_link=None) -> str:
    """Safe HTML for the Markdown ``text``."""
    html = _MD.render(text[:MAX_README], {})
    return sanitize(html, repo, code_link)


def render_plain(text: str) -> str:
    """A README that is not Markdown (README.txt, README): preformatted, escaped."""
    return sanitize("<pre>" + _escape(text[:MAX_README]) + "</pre>")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def is_markdown(filename: str | None) -> bool:
    if not filename:
        return True  # npm's README field is Markdown unless a file name says otherwise
    lower = filename.lower()
    return "." not in lower or lower.rsplit(".", 1)[1] in ("md", "markdown", "mdown", "mkdn", "mkd", "mdwn")


class ReadmeCache:
    """Rendered README HTML by (name, version, digest of the text, repository), LRU-bounded."""

    def __init__(self, entries: int = CACHE_ENTRIES):
        self.entries = entries
        self.items: OrderedDict[tuple, str] = OrderedDict()

    def render(self, name: str, version: str, text: str | None, filename: str | None, repo: Repository | None,
               code_link=None) -> str:
        if not text or not text.strip():
            return ""
        digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()
        key = (name, version, digest, filename, repo)
        hit = self.items.get(key)
        if hit is not None:
            self.items.move_to_end(key)
            return hit
        html = render_markdown(text, repo, code_link) if is_markdown(filename) else render_plain(text)
        self.items[key] = html
        if len(self.items) > self.entries:
            self.items.popitem(last=False)
        return html
