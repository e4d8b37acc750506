"""npm package name rules for *new* packages.

Mirrors validate-npm-package-name (``validForNewPackages``), with the deliberate
differences noted below:

* a leading hyphen stays valid (validate-npm-package-name 7 rejects it, 5/6 did not);
* a scoped name must be exactly ``@scope/name`` and neither part may start with ``.``
  (the lib only checks the package part, so ``@../x`` passed it);
* ``~'!()*`` are rejected in the scope as well as in the package part;
* Ketch reserves a few names of its own (``RESERVED``).

Every problem found is reported; ``str(e)`` reads like
``Invalid package name "React": name can no longer contain capital letters``.
"""

from __future__ import annotations

import string

__all__ = ["MAX_LENGTH", "InvalidName", "split_name", "unscoped", "validate_name"]

MAX_LENGTH = 214

# Characters encodeURIComponent leaves alone.
_URL_SAFE = frozenset(string.ascii_letters + string.digits + "-_.!~*'()")
_SPECIAL = frozenset("~'!()*")

_EXCLUDED = ("node_modules", "favicon.ico")
_RESERVED = frozenset({"__proto__", "_design", ".bin"})

# validate-npm-package-name/lib/builtin-modules.json (v7).
_BUILTINS = frozenset(
    [
        "_http_agent",
        "_http_client",
        "_http_common",
        "_http_incoming",
        "_http_outgoing",
        "_http_server",
        "_stream_duplex",
        "_stream_passthrough",
        "_stream_readable",
        "_stream_transform",
        "_stream_wrap",
        "_stream_writable",
        "_tls_common",
        "_tls_wrap",
        "assert",
        "assert/strict",
        "async_hooks",
        "buffer",
        "child_process",
        "cluster",
        "console",
        "constants",
        "crypto",
        "dgram",
        "diagnostics_channel",
        "dns",
        "dns/promises",
        "domain",
        "events",
        "fs",
        "fs/promises",
        "http",
        "http2",
        "https",
        "inspector",
        "inspector/promises",
        "module",
        "net",
        "os",
        "path",
        "path/posix",
        "path/win32",
        "perf_hooks",
        "process",
        "punycode",
        "querystring",
        "readline",
        "readline/promises",
        "repl",
        "stream",
        "stream/consumers",
        "stream/promises",
        "stream/web",
        "string_decoder",
        "sys",
        "timers",
        "timers/promises",
        "tls",
        "trace_events",
        "tty",
        "url",
        "util",
        "util/types",
        "v8",
        "vm",
        "wasi",
        "worker_threads",
        "zlib",
        "node:sea",
        "node:sqlite",
        "node:test",
        "node:test/reporters",
    ]
)


class InvalidName(ValueError):
    """A package name that may not be used for a new package."""

    def __init__(self, name: str, problems: list[str] | tuple[str, ...]) -> None:
        self.name = name
        self.problems: tuple[str, ...] = tuple(problems)
        shown = name if len(name) <= MAX_LENGTH + 1 else name[:MAX_LENGTH] + "…"
        super().__init__(f'Invalid package name "{shown}": ' + "; ".join(self.problems))


def _url_safe(part: str) -> bool:
    return all(c in _URL_SAFE for c in part)


def _scoped_parts(name: str) -> tuple[str, str] | None:
    """``(scope, pkg)`` for a well-formed ``@scope/pkg``, else ``None``."""
    if not name.startswith("@"):
        return None
    scope, sep, pkg = name[1:].partition("/")
    if not sep or not scope or not pkg or "/" in pkg:
        return None
    return scope, pkg


def _problems(name: str) -> list[str]:
    if not isinstance(name, str):
        return ["name must be a string"]
    if not name:
        return ["name length must be greater than zero"]

    out: list[str] = []
    lower = name.lower()
    if name.startswith("."):
        out.append("name cannot start with a period")
    if name.startswith("_"):
        out.append("name cannot start with an underscore")
    if name.strip() != name:
        out.append("name cannot contain leading or trailing spaces")
    for excluded in _EXCLUDED:
        if lower == excluded:
            out.append(f"{excluded} is not a valid package name")
    if name in _RESERVED:
        out.append("name is reserved")
    if lower in _BUILTINS:
        out.append(f"{name} is a core module name")
    if len(name) > MAX_LENGTH:
        out.append(f"name can no longer contain more than {MAX_LENGTH} characters")
    if lower != name:
        out.append("name can no longer contain capital letters")

    parts = _scoped_parts(name)
    if "/" in name or name.startswith("@"):
        if parts is None:
            out.append('a scoped name must have the form "@scope/name"')
            return out
        segments: tuple[str, ...] = parts
        for part in parts:
            if part.startswith("."):
                out.append("name cannot start with a period")
    else:
        segments = (name,)

    if any(c in _SPECIAL for seg in segments for c in seg):
        out.append('name can no longer contain special characters ("~\'!()*")')
    if not all(_url_safe(seg) for seg in segments):
        out.append("name can only contain URL-friendly characters")

    # Keep the order stable but drop repeats (e.g. two period messages).
    return list(dict.fromkeys(out))


def validate_name(name: str) -> None:
    """Raise :class:`InvalidName` unless *name* may be used for a new package."""
    problems = _problems(name)
    if problems:
        raise InvalidName(str(name), problems)


# Rules added over the years that names published before them still break (npm's
# validate-npm-package-name calls these warnings: such names stay valid for old packages).
_NEW_PACKAGES_ONLY = ("can no longer contain", "is a core module name")


def existing_name_ok(name: str) -> bool:
    """Whether *name* may be the name of a package published elsewhere long ago (``JSONStream``):
    the rules for new names minus capital letters, length, special characters and core names."""
    return not [p for p in _problems(name) if not any(rule in p for rule in _NEW_PACKAGES_ONLY)]


def split_name(name: str) -> tuple[str | None, str]:
    """Split ``@scope/pkg`` into ``("scope", "pkg")``; ``pkg`` into ``(None, "pkg")``.

    Only the shape is checked here (use :func:`validate_name` for the full rules):
    a name with ``@`` or ``/`` that is not exactly ``@scope/pkg`` raises InvalidName.
    """
    if name.startswith("@") or "/" in name:
        parts = _scoped_parts(name)
        if parts is None:
            raise InvalidName(name, ['a scoped name must have the form "@scope/name"'])
        return parts
    return None, name


def unscoped(name: str) -> str:
    """The package part of *name*: ``@babel/core`` -> ``core``, ``lodash`` -> ``lodash``."""
    return split_name(name)[1]
