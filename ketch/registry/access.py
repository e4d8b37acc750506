"""Who may do what to a package: one function, :func:`level`, used by every route.

Levels, each including the ones before: ``none`` < ``read`` < ``write`` (publish, dist-tags,
deprecate) < ``admin`` (unpublish, owners, access and 2FA settings).

- Anyone may read a public package; a restricted one only those listed below.
- Maintainers are admins; so are the owners and admins of the org that owns the package (the org
  it was transferred to, else the org of its scope), and the user whose name is the scope
  (``@alice/x`` belongs to alice).
- Members of a team granted the package get ``read`` (read-only) or ``write`` (read-write).
- A read-only token caps the level at ``read``; a granular token limited to packages or scopes
  caps it at ``read`` (public) or ``none`` (restricted) outside its list, and at its own
  permission inside it (``read-only`` → ``read``, ``no-access`` → as outside the list).
- Expired tokens and tokens used outside their CIDR ranges never get here: they are no identity
  at all (:mod:`ketch.accounts.auth`), so they read like anonymous callers and writes get 401.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ketch.accounts.services import Identity
from ketch.orgs import services as orgs
from ketch.registry.models import Maintainer, Package

LEVELS = ("none", "read", "write", "admin")
_RANK = {name: i for i, name in enumerate(LEVELS)}


def at_least(level: str, wanted: str) -> bool:
    return _RANK[level] >= _RANK[wanted]


async def level(session: AsyncSession, package: Package, ident: Identity | None) -> str:
    public = package.access != "restricted"
    if ident is None:
        return "read" if public else "none"
    best = await _user_level(session, package, ident)
    if public and best == "none":
        best = "read"
    return _cap_for_token(package, ident, best, public)


async def hidden_package(session: AsyncSession, name: str) -> Package | None:
    """The fields of ``name`` that access checks read, as a detached row built the same way as the
    stand-in :func:`can_read_hidden` builds for a missing name (so both cost the same)."""
    row = (await session.execute(
        select(Package.id, Package.scope, Package.access).where(Package.name == name))).first()
    if row is None:
        return None
    return Package(id=row[0], name=name, scope=row[1], access=row[2])


async def can_read_hidden(session: AsyncSession, package: Package | None, name: str,
                          ident: Identity | None) -> bool:
    """Whether ``ident`` may read ``name``, a package anonymous callers cannot see (restricted) —
    or, when ``package`` is None because the name does not exist, False after the very same
    queries on a stand-in, so how long the answer takes does not tell a private package from a
    missing one (catalogue C02). Callers must do the same lookups before it in both cases."""
    if package is None:
        scope = name[1:].split("/", 1)[0] if name.startswith("@") and "/" in name else None
        await level(session, Package(id=0, name=name, scope=scope, access="restricted"), ident)
        return False
    return at_least(await level(session, package, ident), "read")


async def _user_level(session: AsyncSession, package: Package, ident: Identity) -> str:
    maintainer = await session.execute(select(Maintainer.user_id).where(
        Maintainer.package_id == package.id, Maintainer.user_id == ident.user_id))
    if maintainer.first() is not None:
        return "admin"
    if package.scope == ident.name:
        return "admin"
    # From here on every query runs whatever the earlier ones found, for a real package and for
    # the stand-in of a missing name (id 0, no owning org) alike, so a hidden package and a missing
    # one cost the same (C02) even when the hidden one was transferred to an org.
    owner = await orgs.package_org(session, package.id)
    scope_org = await orgs.get_org(session, package.scope) if package.scope else None
    org = owner or scope_org
    role = await orgs.role_of(session, org.id if org is not None else 0, ident.user_id)
    if role in ("owner", "admin"):
        return "admin"
    grant = await orgs.package_grant(session, package.id, ident.user_id)
    if role is not None and grant == "read-write":
        return "write"
    if role is not None and grant == "read-only":
        return "read"
    return "none"


def _cap_for_token(package: Package, ident: Identity, best: str, public: bool) -> str:
    if ident.token_limits is not None:
        packages, scopes, permission = ident.token_limits
        covered = package.name in packages or (package.scope is not None and package.scope in scopes)
        if not covered:
            return "read" if public else "none"
        if permission == "read-only" and at_least(best, "read"):
            best = "read"
        elif permission == "no-access":
            return "read" if public else "none"
    if ident.readonly and at_least(best, "read"):
        best = "read"
    return best


def scope_owner_problem(scope: str | None, ident: Identity, org_role: str | None, org_exists: bool,
                        user_exists: bool) -> str | None:
    """Why ``ident`` may not create a new package in ``scope``: None (it may), "unowned" (nobody
    owns the scope yet) or "forbidden" (someone else does — answered exactly like a publish to an
    existing package the caller may not write, so private package names never leak)."""
    if scope is None or scope == ident.name:
        return None
    if org_exists:
        return None if org_role is not None else "forbidden"
    return "forbidden" if user_exists else "unowned"
