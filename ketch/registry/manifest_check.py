"""Detect "manifest confusion": a publish whose JSON version manifest disagrees with the
``package/package.json`` inside its tarball on fields that change what an install does.

Honest clients do not send the raw ``package.json`` as the version manifest, so both documents are
first brought to one canonical form, and only then compared.  What each client was observed to do
(npm 11.19.1, pnpm 12.21.0, yarn 1.22.22 and yarn 4.18.1, publishing to a logging registry):

* **npm** sends ``PackageJson.fix()`` + ``.prepare()`` of the source directory (then libnpmpublish's
  ``fixName`` and ``semver.clean``), and packs the raw ``package.json``.  The canonical form below *is*
  that pipeline (``_npm_fix`` / ``_npm_prepare``), replayed on both sides with the tarball's file list
  standing in for the source directory.
* **pnpm** and **yarn 4** rewrite the packed ``package.json`` themselves (``publishConfig`` overrides,
  ``workspace:`` and ``catalog:`` ranges, bin string→object for pnpm, invalid entries dropped for yarn 4)
  and send the same document, so the two agree except that pnpm sends a ``semver.clean``-ed version.
* **yarn 1** packs the raw ``package.json`` and sends the result of its own ``normalize-manifest``
  (``fix.js`` + ``validate.cleanDependencies``), which differs from npm's in a few lossy ways; those are
  replayed by ``_yarn1_fix`` on the tarball side as a second "profile".

A publish is consistent when the submitted manifest equals the tarball's under at least one profile.
On top of the client pipelines, the canonical form collapses a few spellings that install the same
thing: hosted-git specs are compared by (host, user, project, committish); ``file:``/``link:`` paths by
their normalised path; a dependency listed in ``optionalDependencies`` is ignored in ``dependencies``
(npm, pnpm and yarn all let the optional entry win); empty containers and ``null`` equal an absent
field; ``os``/``cpu``/``libc``/``bundleDependencies`` are compared as sets.  The submitted manifest may
also carry ``scripts.install == "node-gyp rebuild"`` or ``scripts.start == "node server.js"`` that the
tarball lacks, because npm and yarn 1 derive them from the *source* directory, whose ``binding.gyp``
or ``server.js`` may be left out of the tarball; showing more in the manifest hides nothing.

Everything here is pure, stdlib-only, linear in the size of the input, and never raises.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

__all__ = ["COMPARED_FIELDS", "manifest_mismatches"]

COMPARED_FIELDS: tuple[str, ...] = (
    "name",
    "version",
    "dependencies",
    "devDependencies",
    "optionalDependencies",
    "peerDependencies",
    "peerDependenciesMeta",
    "bundleDependencies",
    "scripts",
    "bin",
    "engines",
    "os",
    "cpu",
    "libc",
)

_DEP_FIELDS = ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies")
_SET_FIELDS = ("os", "cpu", "libc")
# Keys of the raw manifest that any step below reads; everything else is irrelevant and not copied.
_INPUT_KEYS = frozenset(COMPARED_FIELDS) | {"bundledDependencies", "directories", "gypfile", "resolutions"}
# Scripts that npm / yarn 1 add from files of the source directory (see module docstring).
_DERIVED_SCRIPTS = (("install", "node-gyp rebuild"), ("start", "node server.js"))


class _Absent:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<absent>"


_ABSENT: Any = _Absent()

# --------------------------------------------------------------------------------------------------
# JavaScript semantics helpers
# --------------------------------------------------------------------------------------------------

_JS_WS = ("\t\n\x0b\x0c\r \xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
          + "\u2028\u2029\u202f\u205f\u3000\ufeff")


def _js_trim(s: str) -> str:
    return s.strip(_JS_WS)


def _truthy(v: Any) -> bool:
    """JavaScript truthiness of a JSON value (objects and arrays are always truthy)."""
    if v is None or v is False or v is _ABSENT:
        return False
    if v is True:
        return True
    if isinstance(v, (int, float)):
        return v != 0 and not (isinstance(v, float) and math.isnan(v))
    if isinstance(v, str):
        return v != ""
    return True


def _js_str(v: Any) -> str:
    if isinstance(v, str):
        return v
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, list):
        return ",".join("" if x is None else _js_str(x) for x in v)
    return "[object Object]"


def _js_object_keys(v: Any) -> list[str]:
    if isinstance(v, dict):
        return [_js_str(k) for k in v]
    if isinstance(v, (list, str)):
        return [str(i) for i in range(len(v))]
    return []


def _node_normalize(p: str) -> str:
    """``path.posix.normalize``."""
    if p == "":
        return "."
    is_abs = p.startswith("/")
    trailing = p.endswith("/")
    out: list[str] = []
    for seg in p.split("/"):
        if seg == "" or seg == ".":
            continue
        if seg == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not is_abs:
                out.append("..")
            continue
        out.append(seg)
    res = "/".join(out)
    if not res:
        if is_abs:
            return "/"
        return "./" if trailing else "."
    if trailing:
        res += "/"
    return "/" + res if is_abs else res


def _node_basename(p: str) -> str:
    """``path.posix.basename`` (one argument)."""
    end = len(p)
    while end > 0 and p[end - 1] == "/":
        end -= 1
    if end == 0:
        return ""
    start = p.rfind("/", 0, end) + 1
    return p[start:end]


def _unixify(ref: str) -> str:
    return ref.replace("\\", "/").replace(":", "/")


def _secure_path(ref: str) -> str:
    """``secureAndUnixifyPath`` of @npmcli/package-json: a relative path that cannot leave the package."""
    u = _unixify(ref)
    rooted = _node_normalize("//" + u) if u else "/"  # path.join('/', u)
    secured = _unixify(_node_normalize("./" + rooted))  # path.join('.', rooted)
    return "" if secured.startswith("./") else secured


# --------------------------------------------------------------------------------------------------
# semver.clean(version, { loose: true }) (node-semver 7; yarn 1's semver 5 behaves the same here)
# --------------------------------------------------------------------------------------------------

_NONNUMERIC = r"[0-9]*[a-zA-Z-][a-zA-Z0-9-]*"
_PREID_LOOSE = rf"(?:{_NONNUMERIC}|[0-9]+)"
_BUILDID = r"[a-zA-Z0-9-]+"
_LOOSE_RE = re.compile(
    rf"[v=\s]*([0-9]+)\.([0-9]+)\.([0-9]+)"
    rf"(?:-?({_PREID_LOOSE}(?:\.{_PREID_LOOSE})*))?"
    rf"(?:\+({_BUILDID}(?:\.{_BUILDID})*))?\Z"
)
_MAX_SAFE_INTEGER = 2**53 - 1
_SEMVER_MAX_LENGTH = 256


def _semver_clean(version: str) -> str | None:
    if len(version) > 4 * _SEMVER_MAX_LENGTH:  # cheap guard before trimming hostile input
        return None
    s = re.sub(r"^[=v]+", "", _js_trim(version))
    if len(s) > _SEMVER_MAX_LENGTH:
        return None
    m = _LOOSE_RE.match(_js_trim(s))
    if not m:
        return None
    nums = [int(m.group(i)) for i in (1, 2, 3)]
    if any(n > _MAX_SAFE_INTEGER for n in nums):
        return None
    out = f"{nums[0]}.{nums[1]}.{nums[2]}"
    if m.group(4):
        ids = []
        for ident in m.group(4).split("."):
            if ident.isascii() and ident.isdigit() and int(ident) < _MAX_SAFE_INTEGER:
                ids.append(str(int(ident)))
            else:
                ids.append(ident)
        out += "-" + ".".join(ids)
    return out


# --------------------------------------------------------------------------------------------------
# Hosted git specs (a port of hosted-git-info 9's fromUrl, reduced to the repository identity)
# --------------------------------------------------------------------------------------------------

_SHORTCUTS = {"github:": "github", "gitlab:": "gitlab", "bitbucket:": "bitbucket", "gist:": "gist",
              "sourcehut:": "sourcehut"}
_DOMAINS = {"github.com": "github", "gitlab.com": "gitlab", "bitbucket.org": "bitbucket",
            "gist.github.com": "gist", "git.sr.ht": "sourcehut"}
_HOST_PROTOCOLS = {
    "github": ("git:", "http:", "git+ssh:", "git+https:", "ssh:", "https:"),
    "bitbucket": ("git+ssh:", "git+https:", "ssh:", "https:"),
    "gitlab": ("git+ssh:", "git+https:", "ssh:", "https:"),
    "gist": ("git:", "git+ssh:", "git+https:", "ssh:", "https:"),
    "sourcehut": ("git+ssh:", "https:"),
}
_KNOWN_PROTOCOLS = frozenset({"git+ssh:", "ssh:", "git+https:", "git:", "http:", "https:", "git+http:"}
                             | set(_SHORTCUTS))
_SPECIAL_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp", "file"})
_JS_SPACE_RE = re.compile(r"[\s\ufeff]")
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")


def _is_github_shorthand(arg: str) -> bool:
    first_hash = arg.find("#")
    first_slash = arg.find("/")
    second_slash = arg.find("/", first_slash + 1)
    first_colon = arg.find(":")
    m = _JS_SPACE_RE.search(arg)
    first_at = arg.find("@")

    def only_after_hash(i: int) -> bool:
        return i == -1 or (first_hash > -1 and i > first_hash)

    if first_hash > -1:
        not_end_slash = first_hash == 0 or arg[first_hash - 1] != "/"
    else:
        not_end_slash = not arg.endswith("/")
    return ((m is None or (first_hash > -1 and m.start() > first_hash))
            and first_slash > 0 and not_end_slash and not arg.startswith(".")
            and only_after_hash(first_at) and only_after_hash(first_colon)
            and only_after_hash(second_slash))


def _last_index_before(s: str, ch: str, before: str) -> int:
    start = s.find(before)
    return s.rfind(ch, 0, start + 1 if start > -1 else len(s))


def _correct_protocol(arg: str) -> str:
    first_colon = arg.find(":")
    if arg[: first_colon + 1] in _KNOWN_PROTOCOLS:
        return arg
    if first_colon > -1 and arg[first_colon:first_colon + 3] == "://":
        return arg
    first_at = arg.find("@")
    if first_at > -1:
        return "git+ssh://" + arg if first_at > first_colon else arg
    return arg[: first_colon + 1] + "//" + arg[first_colon + 1:]


def _correct_url(giturl: str) -> str:
    first_at = _last_index_before(giturl, "@", "#")
    last_colon = _last_index_before(giturl, ":", "#")
    if last_colon > first_at:
        giturl = giturl[:last_colon] + "/" + giturl[last_colon + 1:]
    if _last_index_before(giturl, ":", "#") == -1 and "//" not in giturl:
        giturl = "git+ssh://" + giturl
    return giturl


def _resolve_dots(path: str) -> str:
    out: list[str] = []
    segs = path.split("/")
    for i, seg in enumerate(segs[1:], 1):
        last = i == len(segs) - 1
        if seg == "..":
            if out:
                out.pop()
            if last:
                out.append("")
        elif seg == ".":
            if last:
                out.append("")
        else:
            out.append(seg)
    return "/" + "/".join(out)


def _parse_url(u: str) -> dict[str, str] | None:
    """A small subset of the WHATWG URL parser: enough for ``new URL()`` success/failure and the
    protocol, hostname, pathname and hash that hosted-git-info looks at."""
    u = u.strip("".join(map(chr, range(0x21)))).replace("\t", "").replace("\n", "").replace("\r", "")
    m = _SCHEME_RE.match(u)
    if not m:
        return None
    scheme = m.group(1).lower()
    rest = u[m.end():]
    frag = ""
    i = rest.find("#")
    if i >= 0:
        frag = rest[i:] if len(rest) > i + 1 else ""
        rest = rest[:i]
    special = scheme in _SPECIAL_SCHEMES
    if special:
        rest = rest.replace("\\", "/")
    q = rest.find("?")
    if q >= 0:
        rest = rest[:q]
    if special:
        if scheme == "file":
            return None
        rest = rest.lstrip("/")
    elif rest.startswith("//"):
        rest = rest[2:]
    else:
        return {"protocol": scheme + ":", "hostname": "", "pathname": rest, "hash": frag}
    j = rest.find("/")
    authority, path = (rest[:j], rest[j:]) if j >= 0 else (rest, "")
    at = authority.rfind("@")
    hostport = authority[at + 1:] if at >= 0 else authority
    host = hostport
    if not hostport.startswith("["):
        c = hostport.rfind(":")
        if c >= 0:
            port = hostport[c + 1:]
            host = hostport[:c]
            if port and not (port.isascii() and port.isdigit() and int(port) <= 65535):
                return None
    if special:
        if not host:
            return None
        host = host.lower()
    if any(ch in host for ch in " <>^|\\"):
        return None
    if path:
        path = _resolve_dots(path)
    elif special:
        path = "/"
    return {"protocol": scheme + ":", "hostname": host, "pathname": path, "hash": frag}


def _decode_uri_component(s: str) -> str:
    if "%" not in s:
        return s
    out = bytearray()
    i = 0
    n = len(s)
    while i < n:
        ch = s[i]
        if ch == "%":
            h = s[i + 1:i + 3]
            if len(h) != 2 or any(c not in "0123456789abcdefABCDEF" for c in h):
                raise ValueError("URIError")
            out.append(int(h, 16))
            i += 3
        else:
            out += ch.encode("utf-8", "surrogatepass")
            i += 1
    return out.decode("utf-8")  # UnicodeDecodeError is a ValueError


def _split_js(s: str, limit: int) -> list[str | None]:
    parts: list[str | None] = list(s.split("/")[:limit])
    return parts + [None] * (limit - len(parts))


def _strip_git(project: str | None) -> str | None:
    return project[:-4] if project and project.endswith(".git") else project


def _extract(host: str, url: dict[str, str]) -> tuple[str | None, str | None, str | None] | None:
    pathname, committish = url["pathname"], url["hash"][1:]
    if host == "github":
        _, user, project, kind, tree_committish = _split_js(pathname, 5)
        if kind and kind != "tree":
            return None
        if kind:
            committish = tree_committish if tree_committish is not None else "undefined"
        project = _strip_git(project)
        return (user, project, committish) if user and project else None
    if host == "gitlab":
        path = pathname[1:]
        if "/-/" in path or "/archive.tar.gz" in path:
            return None
        segs = path.split("/")
        project = _strip_git(segs.pop())
        user = "/".join(segs)
        return (user, project, committish) if user and project else None
    _, user, project, aux = _split_js(pathname, 4)
    if host == "gist":
        if aux == "raw":
            return None
        if not project:
            if not user:
                return None
            project, user = user, None
        return user, _strip_git(project), committish
    if aux == ("get" if host == "bitbucket" else "archive"):
        return None
    project = _strip_git(project)
    return (user, project, committish) if user and project else None


@functools.lru_cache(maxsize=1024)
def _hosted_key(spec: str) -> tuple[str, str | None, str, str | None] | None:
    """(host, user, project, committish) when hosted-git-info recognises ``spec``, else None.

    npm rewrites recognised specs of ``dependencies``/``devDependencies`` to one representation
    ("user/repo" -> "github:user/repo", "https://github.com/u/r" -> "git+https://github.com/u/r.git"),
    all of which fetch the same repository at the same committish."""
    if not spec or len(spec) > 4096:
        return None
    corrected = "github:" + spec if _is_github_shorthand(spec) else spec
    with_protocol = _correct_protocol(corrected)
    parsed = _parse_url(with_protocol) or _parse_url(_correct_url(with_protocol))
    if not parsed:
        return None
    shortcut = _SHORTCUTS.get(parsed["protocol"])
    hostname = parsed["hostname"]
    hostname = hostname.removeprefix("www.")
    host = shortcut or _DOMAINS.get(hostname)
    if not host:
        return None
    try:
        if shortcut:
            pathname = parsed["pathname"]
            pathname = pathname.removeprefix("/")
            at = pathname.find("@")
            if at > -1:
                pathname = pathname[at + 1:]
            slash = pathname.rfind("/")
            if slash > -1:
                user: str | None = _decode_uri_component(pathname[:slash]) or None
                project = _decode_uri_component(pathname[slash + 1:])
            else:
                user, project = None, _decode_uri_component(pathname)
            project = _strip_git(project) or ""
            committish = _decode_uri_component(parsed["hash"][1:]) if parsed["hash"] else None
        else:
            if parsed["protocol"] not in _HOST_PROTOCOLS[host]:
                return None
            seg = _extract(host, parsed)
            if seg is None:
                return None
            raw_user, raw_project, raw_committish = seg
            user = _decode_uri_component(raw_user) if raw_user else None
            project = _decode_uri_component(raw_project or "")
            committish = _decode_uri_component(raw_committish or "")
    except ValueError:
        return None
    if host == "gist":  # gist URLs are identified by the project id alone
        user = None
    elif user is None:  # npm renders "github:proj" as "github:null/proj"
        user = "null"
    return host, user, project, committish or None


def _canon_spec(spec: str) -> Any:
    key = _hosted_key(spec)
    if key is not None:
        return ("hosted-git",) + key
    for prefix in ("file:", "link:"):
        if spec.startswith(prefix):
            return ("path", prefix, _node_normalize(spec[len(prefix):]))
    return spec


# --------------------------------------------------------------------------------------------------
# The tarball's file tree, standing in for the source directory
# --------------------------------------------------------------------------------------------------


class _Tree:
    __slots__ = ("_entries", "_files", "_top")

    def __init__(self, files: Any) -> None:
        norm: set[str] = set()
        try:
            items = list(files) if not isinstance(files, (str, bytes, dict)) else []
        except Exception:  # noqa: BLE001 - any non-iterable counts as an empty tarball
            items = []
        for p in items:
            if not isinstance(p, str):
                continue
            segs = [s for s in p.split("/") if s not in ("", ".")]
            if not segs or ".." in segs:
                continue
            norm.add("/".join(segs))
        self._files = norm
        self._top: set[str] | None = None
        self._entries: set[str] | None = None

    @property
    def top(self) -> set[str]:
        """Names in the package root (files and directories), like ``readdir``."""
        if self._top is None:
            self._top = {p.split("/", 1)[0] for p in self._files}
        return self._top

    @property
    def entries(self) -> set[str]:
        """Every file and every directory that holds one."""
        if self._entries is None:
            entries = set(self._files)
            for p in self._files:
                i = p.rfind("/")
                while i > 0:
                    d = p[:i]
                    if d in entries:
                        break
                    entries.add(d)
                    i = p.rfind("/", 0, i)
            self._entries = entries
        return self._entries

    def has_root_gyp(self) -> bool:  # glob('*.gyp') in the package root
        return any(n.endswith(".gyp") and not n.startswith(".") for n in self.top)

    def under(self, directory: str) -> list[str]:
        """Paths below ``directory`` (relative to it), files and directories, no dot segments."""
        prefix = directory + "/" if directory else ""
        out = []
        for e in self.entries:
            if prefix and not e.startswith(prefix):
                continue
            rel = e[len(prefix):]
            if rel and not any(s.startswith(".") for s in rel.split("/")):
                out.append(rel)
        # glob walks breadth-first, so on a basename collision the deeper path is assigned last
        return sorted(out, key=lambda r: (r.count("/"), r))

    def is_dir(self, directory: str) -> bool:
        return directory == "" or (directory in self.entries and directory not in self._files)

    def children(self, directory: str) -> list[str]:
        prefix = directory + "/" if directory else ""
        n = len(prefix)
        return sorted({e[n:] for e in self.entries if e.startswith(prefix) and "/" not in e[n:]})


# --------------------------------------------------------------------------------------------------
# npm: PackageJson.fix() then .prepare() (@npmcli/package-json 7), as `npm publish` applies them
# --------------------------------------------------------------------------------------------------

_SCRIPT_BIN_PREFIX = re.compile(r"^(\.[/\\])?node_modules[/\\].bin[\\/]")
_DEP_LIST_SPLIT = re.compile(r"[\n\r\s\t ,]+")
_DEP_ENTRY_SPLIT = re.compile(r"(:?[@\s><=])")


def _npm_bin(d: dict) -> None:
    """normalizePackageBin: string -> {name: path}, array -> {basename: path}, secure every path."""
    bin_ = d.get("bin")
    if _truthy(bin_):
        if isinstance(bin_, str) and _truthy(d.get("name")):
            bin_ = {_js_str(d["name"]): bin_}
        elif isinstance(bin_, list):
            acc: dict = {}
            for k in bin_:
                if isinstance(k, str):
                    acc[_node_basename(k)] = k
            bin_ = acc
        if isinstance(bin_, dict):
            bin_ = dict(bin_)
            for key in list(bin_):
                if key not in bin_:
                    continue
                target = bin_[key]
                if not isinstance(target, str):
                    del bin_[key]
                    continue
                base = _node_basename(_secure_path(_js_str(key)))
                secured = _secure_path(target)
                if not base or not secured:
                    del bin_[key]
                    continue
                if base != key:
                    del bin_[key]
                bin_[base] = secured
            if bin_:
                d["bin"] = bin_
            else:
                d.pop("bin", None)
            return
    d.pop("bin", None)


def _npm_bundle(d: dict, delete_false: bool) -> None:
    if "bundleDependencies" not in d:
        return
    bd = d["bundleDependencies"]
    if bd is False and not delete_false:
        d["bundleDependencies"] = []
    elif bd is True:
        deps = d.get("dependencies")
        d["bundleDependencies"] = _js_object_keys(deps if _truthy(deps) else {})
    elif isinstance(bd, dict):
        d["bundleDependencies"] = [_js_str(k) for k in bd]
    elif isinstance(bd, list):
        pass
    else:
        del d["bundleDependencies"]


def _npm_scripts(d: dict) -> None:
    if "scripts" not in d:
        return
    s = d["scripts"]
    if isinstance(s, dict):
        d["scripts"] = {k: _SCRIPT_BIN_PREFIX.sub("", v, count=1) for k, v in s.items() if isinstance(v, str)}
    elif isinstance(s, list):
        d["scripts"] = [_SCRIPT_BIN_PREFIX.sub("", v, count=1) if isinstance(v, str) else None for v in s]
    elif s is not None:
        del d["scripts"]


def _npm_fix_deps(d: dict) -> None:
    for field in ("dependencies", "devDependencies", "optionalDependencies"):
        v = d.get(field)
        if not _truthy(v):
            continue
        if isinstance(v, str):
            v = _DEP_LIST_SPLIT.split(_js_trim(v))
        if isinstance(v, list):
            obj: dict = {}
            for entry in v:
                if isinstance(entry, str):
                    parts = _DEP_ENTRY_SPLIT.split(_js_trim(entry))
                    obj[parts[0]] = _js_trim(re.sub(r"^@", "", "".join(parts[1:])))
            v = obj
        d[field] = v
    for field in ("dependencies", "devDependencies"):
        if field in d:
            v = d[field]
            if not isinstance(v, dict):
                del d[field]
            else:
                d[field] = {k: r for k, r in v.items() if isinstance(r, str)}


def _npm_fix(d: dict) -> None:
    _npm_bin(d)  # async step "binRefs" runs before the sync name fix
    name = d.get("name")
    if not _truthy(name):
        d["name"] = ""
    elif isinstance(name, str):
        d["name"] = _js_trim(name)
    version = d.get("version")
    if not _truthy(version):
        d["version"] = ""
    elif isinstance(version, str):
        d["version"] = _semver_clean(version) or version
    _npm_bundle(d, delete_false=False)
    _npm_scripts(d)
    _npm_fix_deps(d)


def _npm_bin_dir(bin_dir: str, tree: _Tree) -> dict:
    bin_path = _secure_path(bin_dir)
    acc: dict = {}
    for rel in tree.under(bin_path.rstrip("/")):
        acc[_node_basename(rel)] = f"{bin_path}/{_secure_path(rel)}"
    return acc


def _npm_prepare(d: dict, tree: _Tree) -> None:
    scripts = d.get("scripts")
    if not _truthy(scripts):
        scripts = {}
    if isinstance(scripts, dict):
        scripts = dict(scripts)
        if (not _truthy(scripts.get("install")) and not _truthy(scripts.get("preinstall"))
                and d.get("gypfile") is not False and tree.has_root_gyp()):
            scripts["install"] = "node-gyp rebuild"
            d["scripts"] = scripts
            d["gypfile"] = True
        if not _truthy(scripts.get("start")) and "server.js" in tree.top:
            scripts["start"] = "node server.js"
            d["scripts"] = scripts

    directories = d.get("directories")
    bin_dir = directories.get("bin") if isinstance(directories, dict) else None
    if _truthy(bin_dir) and not _truthy(d.get("bin")) and isinstance(bin_dir, str):
        d["bin"] = _npm_bin_dir(bin_dir, tree)
    else:
        _npm_bin(d)

    if "bundleDependencies" not in d and "bundledDependencies" in d:
        d["bundleDependencies"] = d["bundledDependencies"]
    d.pop("bundledDependencies", None)
    _npm_bundle(d, delete_false=True)
    _npm_scripts(d)

    # normalizeData: fixBundleDependenciesField
    bd = d.get("bundleDependencies")
    if _truthy(bd) and not isinstance(bd, list):
        del d["bundleDependencies"]
    elif _truthy(bd):
        kept = []
        for name in bd:
            if not isinstance(name, str) or not name:
                continue
            deps = d.get("dependencies")
            if not _truthy(deps):
                deps = d["dependencies"] = {}
            if isinstance(deps, dict) and name not in deps:
                deps[name] = "*"
            kept.append(name)
        d["bundleDependencies"] = kept


# --------------------------------------------------------------------------------------------------
# yarn 1: util/normalize-manifest (fix.js + validate.cleanDependencies), as `yarn publish` applies it
# --------------------------------------------------------------------------------------------------

_YARN1_VALID_BIN_KEY = re.compile(r"(?!\.{0,2}\Z)[a-z0-9._-]+\Z", re.IGNORECASE)
_YARN1_PARENT_PATH = re.compile(r"\.\.([\\/]|\Z)")


def _yarn1_valid_bin(target: str) -> bool:
    return not target.startswith("/") and not _YARN1_PARENT_PATH.match(_node_normalize(target))


def _yarn1_fix(d: dict, tree: _Tree) -> None:
    version = d.get("version")
    if isinstance(version, str):
        d["version"] = _semver_clean(version) or version
    if not _truthy(d.get("name")):
        d["name"] = ""
    if not _truthy(d.get("version")):
        d["version"] = ""

    engines = d.get("engines")
    if isinstance(engines, list):
        converted = {}
        for item in engines:
            if isinstance(item, str):
                parts = re.split(r" +", _js_trim(item))
                converted[parts[0]] = " ".join(parts[1:])
        d["engines"] = converted

    name, bin_ = d["name"], d.get("bin")
    if isinstance(name, str) and isinstance(bin_, str) and bin_:
        bin_ = {re.sub(r"^@[^/]+/", "", name): bin_}
    if isinstance(bin_, dict):
        d["bin"] = {k: _node_normalize(t) for k, t in bin_.items()
                    if _YARN1_VALID_BIN_KEY.match(_js_str(k)) and isinstance(t, str) and _yarn1_valid_bin(t)}
    elif isinstance(bin_, list):
        d["bin"] = [_node_normalize(t) if isinstance(t, str) and _yarn1_valid_bin(t) else None for t in bin_]
    else:
        d.pop("bin", None)

    if _truthy(d.get("bundledDependencies")):
        d["bundleDependencies"] = d.pop("bundledDependencies")

    scripts = d.get("scripts")
    if not (_truthy(scripts) and isinstance(scripts, (dict, list))):
        scripts = {}
    if isinstance(scripts, dict):
        scripts = dict(scripts)
        if not _truthy(scripts.get("start")) and "server.js" in tree.top:
            scripts["start"] = "node server.js"
        if not _truthy(scripts.get("install")) and "binding.gyp" in tree.top:
            scripts["install"] = "node-gyp rebuild"
        if scripts:
            d["scripts"] = scripts

    directories = d.get("directories")
    if isinstance(directories, dict):
        bin_dir = directories.get("bin")
        if not _truthy(d.get("bin")) and isinstance(bin_dir, str) and bin_dir:
            expanded: dict = {}
            d["bin"] = expanded
            rel = _node_normalize("./" + bin_dir).rstrip("/")
            rel = "" if rel == "." else rel
            if not rel.startswith("..") and tree.is_dir(rel):
                for child in tree.children(rel):
                    if not child.startswith("."):
                        expanded[child] = _node_normalize(f"./{bin_dir}/{child}")
    d.pop("directories", None)

    for field in ("resolutions",) + _DEP_FIELDS:
        deps = d.get(field)
        if isinstance(deps, dict):
            d[field] = {k: (v if _truthy(v) else "") for k, v in deps.items() if k != "//"}
        elif isinstance(deps, list):
            d[field] = [v if _truthy(v) else "" for v in deps]

    # cleanDependencies: a name keeps only its first occurrence (optional, prod, dev), with the first
    # version that is not "" or "*" among all of them.
    order = ("optionalDependencies", "dependencies", "devDependencies")
    typed = [f for f in order if isinstance(d.get(f), dict)]
    non_trivial: dict = {}
    for field in typed:
        for dep, ver in d[field].items():
            if dep not in non_trivial and _truthy(ver) and ver != "*":
                non_trivial[dep] = ver
    seen: set = set()
    for field in typed:
        kept = {}
        for dep, ver in d[field].items():
            if dep in seen:
                continue
            kept[dep] = non_trivial.get(dep, ver)
            seen.add(dep)
        d[field] = kept


# --------------------------------------------------------------------------------------------------
# Canonical form and comparison
# --------------------------------------------------------------------------------------------------


def _empty(v: Any) -> bool:
    return v is _ABSENT or v is None or (isinstance(v, (dict, list)) and not v)


def _as_set(v: Any) -> Any:
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return sorted(set(v))
    return v


def _finalize(d: dict) -> dict[str, Any]:
    out: dict[str, Any] = {f: d.get(f, _ABSENT) for f in COMPARED_FIELDS}
    for field in _DEP_FIELDS:
        deps = out[field]
        if isinstance(deps, dict):
            out[field] = {_js_str(k): _canon_spec(v) for k, v in deps.items() if isinstance(v, str)}
    prod, optional = out["dependencies"], out["optionalDependencies"]
    if isinstance(prod, dict) and isinstance(optional, dict):
        out["dependencies"] = {k: v for k, v in prod.items() if k not in optional}
    bin_holder = {"name": d.get("name"), "bin": out["bin"]}
    _npm_bin(bin_holder)
    out["bin"] = bin_holder.get("bin", _ABSENT)
    for field in _SET_FIELDS + ("bundleDependencies",):
        out[field] = _as_set(out[field])
    for field in COMPARED_FIELDS:
        if field not in ("name", "version") and _empty(out[field]):
            out[field] = _ABSENT
    return out


def _canonical(manifest: Any, tree: _Tree, yarn1: bool) -> dict[str, Any]:
    d = {k: v for k, v in manifest.items() if k in _INPUT_KEYS} if isinstance(manifest, dict) else {}
    if yarn1:
        _yarn1_fix(d, tree)
    _npm_fix(d)
    _npm_prepare(d, tree)
    return _finalize(d)


_KIND_BY_TYPE = {dict: "dict", list: "list", str: "str", bool: "bool", int: "number", float: "number",
                 tuple: "tuple", type(None): "null"}
# Decoded JSON has no cycles or shared parts; objects built in Python might, so bound the walk.
_MAX_VISITS = 20_000_000


def _kind(v: Any) -> str:
    kind = _KIND_BY_TYPE.get(type(v))
    if kind is not None:
        return kind
    if v is _ABSENT:
        return "absent"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "str"
    if isinstance(v, dict):
        return "dict"
    if isinstance(v, list):
        return "list"
    if isinstance(v, tuple):
        return "tuple"
    return "other"


def _deep_equal(a: Any, b: Any) -> bool:
    """Strict JSON equality (true != 1), iterative so that deep nesting cannot overflow the stack."""
    stack = [(a, b)]
    visits = 0
    while stack:
        x, y = stack.pop()
        if x is y:
            continue
        kind = _kind(x)
        if kind != _kind(y):
            return False
        if kind == "dict" or kind == "list" or kind == "tuple":
            visits += 1
            if visits > _MAX_VISITS or len(x) != len(y):
                return False
            if kind == "dict":
                if x.keys() != y.keys():
                    return False
                for key in x:
                    stack.append((x[key], y[key]))
            else:
                stack.extend(zip(x, y))
        elif kind == "number":
            nans = isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y)
            if not (x == y or nans):
                return False
        elif kind == "other":
            try:
                if not bool(x == y):
                    return False
            except Exception:  # noqa: BLE001 - exotic objects from Python callers: just unequal
                return False
        elif x != y:
            return False
    return True


def _scripts_equal(submitted: Any, packed: Any) -> bool:
    if isinstance(submitted, dict) and (packed is _ABSENT or isinstance(packed, dict)):
        packed_scripts = packed if isinstance(packed, dict) else {}
        extra = {k for k, v in _DERIVED_SCRIPTS if submitted.get(k) == v and k not in packed_scripts}
        if extra:
            submitted = {k: v for k, v in submitted.items() if k not in extra} or _ABSENT
    return _deep_equal(submitted, packed)


def _diff(submitted: dict[str, Any], packed: dict[str, Any]) -> list[str]:
    out = []
    for field in COMPARED_FIELDS:
        equal = (_scripts_equal if field == "scripts" else _deep_equal)(submitted[field], packed[field])
        if not equal:
            out.append(field)
    return sorted(out)


def _raw_diff(submitted: Any, packed: Any) -> list[str]:
    s = submitted if isinstance(submitted, dict) else {}
    p = packed if isinstance(packed, dict) else {}
    out = []
    for field in COMPARED_FIELDS:
        try:
            if not _deep_equal(s.get(field, _ABSENT), p.get(field, _ABSENT)):
                out.append(field)
        except Exception:  # noqa: BLE001
            out.append(field)
    return sorted(out)


def manifest_mismatches(submitted: dict, packed: dict, tarball_files: frozenset[str]) -> list[str]:
    """Return the sorted list of field names on which the submitted version manifest and the
    tarball's package.json disagree after normalising both the way the honest clients do.
    `tarball_files` holds the paths inside the tarball relative to the package root
    (e.g. "package.json", "bin/cli.js", "binding.gyp"), used for directories.bin / binding.gyp / server.js rules.
    Empty list = consistent."""
    try:
        tree = _Tree(tarball_files)
        canonical_submitted = _canonical(submitted, tree, yarn1=False)
        best: list[str] | None = None
        for yarn1 in (False, True):
            mismatches = _diff(canonical_submitted, _canonical(packed, tree, yarn1=yarn1))
            if not mismatches:
                return []
            if best is None or len(mismatches) < len(best):
                best = mismatches
        return best or []
    except Exception:  # noqa: BLE001  # pragma: no cover - a hostile manifest must not crash a publish
        return _raw_diff(submitted, packed)
