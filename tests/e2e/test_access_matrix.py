"""The access matrix: every kind of caller × every package operation, on a private and a public
package of one organisation, against the live server (SQLite in one CI run, PostgreSQL + S3 in the
other).

``MATRIX`` below is the whole specification; each cell is one parametrised case, named
``<package>-<principal>-<operation>``, so a failure names exactly what leaked. Beyond its status:

- an allowed write must have happened and a refused one must have changed nothing;
- on the private package, a caller who may not read it must get an answer **byte-identical**
  (status, headers except ``date``, body) to the same request for a name that never existed in
  the same scope, so nothing tells them the package exists.

The restricted tokens (read-only, granular, expired, outside CIDR) all belong to an org *owner*:
without the restriction they could do everything, so any allowed cell beyond the expected ones
is the restriction failing. "unpublish" removes one version (``npm unpublish name@version``), set
up for the cell beforehand; "access" is ``npm access set status=<current>`` (allowed only to
admins, and a no-op so it leaves the package as the other cells expect it).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import quote

import httpx
import pytest
from conftest import escaped, short_name, unique

from tests.support.publish import publish_body as shared_publish_body

pytestmark = pytest.mark.e2e

OPERATIONS = ("read", "tarball", "publish", "dist-tag", "deprecate", "unpublish", "access")

# fmt: off
MATRIX = {
    "private": {  # @org/secret-…, published with --access restricted
        #                           read   tarball publish dist-tag deprecate unpublish access
        "anonymous":              ("404", "404", "401", "401", "401", "401", "401"),
        "other_user":             ("404", "404", "403", "404", "404", "404", "404"),
        "org_member_no_team":     ("404", "404", "403", "404", "404", "404", "404"),
        "team_read_only":         ("ok",  "ok",  "403", "403", "403", "403", "403"),
        "team_read_write":        ("ok",  "ok",  "ok",  "ok",  "ok",  "403", "403"),
        "org_owner":              ("ok",  "ok",  "ok",  "ok",  "ok",  "ok",  "ok"),
        "read_only_token":        ("ok",  "ok",  "403", "403", "403", "403", "403"),
        "granular_this_package":  ("ok",  "ok",  "ok",  "ok",  "ok",  "ok",  "ok"),
        "granular_other_package": ("404", "404", "403", "404", "404", "404", "404"),
        "expired_token":          ("404", "404", "401", "401", "401", "401", "401"),
        "outside_cidr_token":     ("404", "404", "401", "401", "401", "401", "401"),
    },
    "public": {  # @org/open-…, published public
        "anonymous":              ("ok",  "ok",  "401", "401", "401", "401", "401"),
        "other_user":             ("ok",  "ok",  "403", "403", "403", "403", "403"),
        "org_member_no_team":     ("ok",  "ok",  "403", "403", "403", "403", "403"),
        "team_read_only":         ("ok",  "ok",  "403", "403", "403", "403", "403"),
        "team_read_write":        ("ok",  "ok",  "ok",  "ok",  "ok",  "403", "403"),
        "org_owner":              ("ok",  "ok",  "ok",  "ok",  "ok",  "ok",  "ok"),
        "read_only_token":        ("ok",  "ok",  "403", "403", "403", "403", "403"),
        "granular_this_package":  ("ok",  "ok",  "ok",  "ok",  "ok",  "ok",  "ok"),
        "granular_other_package": ("ok",  "ok",  "403", "403", "403", "403", "403"),
        "expired_token":          ("ok",  "ok",  "401", "401", "401", "401", "401"),
        "outside_cidr_token":     ("ok",  "ok",  "401", "401", "401", "401", "401"),
    },
}
# fmt: on

# Callers who must not be able to tell that the private package exists. The one exception is a
# member's publish: members may create new packages in their org's scope, so the never-existing
# name would be created where the existing one is refused (the name is taken either way).
HIDDEN_FROM = {"anonymous", "other_user", "org_member_no_team", "granular_other_package", "expired_token",
               "outside_cidr_token"}
NOT_COMPARABLE = {("org_member_no_team", "publish")}

CELLS = [(kind, principal, op) for kind, rows in MATRIX.items() for principal in rows for op in OPERATIONS]


def expected(kind: str, principal: str, op: str) -> str:
    return MATRIX[kind][principal][OPERATIONS.index(op)]


# --------------------------------------------------------------------------------------------------
# publish bodies (npm 11's shape, protocol §4.1)
# --------------------------------------------------------------------------------------------------


def publish_body(name: str, version: str, access: str | None = None) -> dict:
    return shared_publish_body(name, version, manifest={"name": name, "version": version, "license": "MIT"},
                               access=access)


# --------------------------------------------------------------------------------------------------
# the world: one org, its members and teams, two packages, and the owner's restricted tokens
# --------------------------------------------------------------------------------------------------


@dataclass
class World:
    registry: object
    org: str
    creator: str  # the token of the org's creator, who published both packages
    packages: dict[str, str]  # "private"/"public" → name
    tokens: dict[str, str | None] = field(default_factory=dict)  # principal → bearer token
    versions: itertools.count = field(default_factory=lambda: itertools.count(1))

    def client(self, principal: str) -> httpx.Client:
        return self.registry.http(self.tokens[principal])

    def ghost(self, kind: str) -> str:
        """A name in the same scope that never existed, as long as the real one."""
        real = short_name(self.packages[kind])
        return f"@{self.org}/" + ("z" * len(real))

    def doc(self, name: str) -> dict:
        with self.registry.http(self.creator) as c:
            resp = c.get(f"{escaped(name)}?write=true")
        assert resp.status_code == 200, resp.text
        return resp.json()

    def publish(self, token: str | None, name: str, version: str, access: str | None = None) -> httpx.Response:
        with self.registry.http(token) as c:
            return c.put(escaped(name), json=publish_body(name, version, access),
                         headers={"npm-command": "publish"})


def ok(resp: httpx.Response, what: str) -> dict:
    assert resp.status_code in (200, 201), f"{what}: {resp.status_code} {resp.text}"
    return resp.json() if resp.content else {}


def expire_token(registry, key: str) -> None:
    """Move a token's expiry into the past directly in the server's database."""
    from sqlalchemy import update

    from ketch.accounts.models import Token
    from ketch.config import Settings
    from ketch.db import Database
    from ketch.db.base import utcnow

    url = Settings(data_dir=registry.data_dir, database_url=registry.database_url).resolved_database_url

    async def run() -> None:
        db = Database(url)
        try:
            async with db.write() as session:
                result = await session.execute(update(Token).where(Token.digest == key)
                                               .values(expires=utcnow() - timedelta(minutes=1)))
                assert result.rowcount == 1
        finally:
            await db.dispose()

    asyncio.run(run())


@pytest.fixture(scope="module")
def world(registry) -> World:
    users = {role: registry.create_user(role.replace("_", "-")[:12]) for role in (
        "creator", "org_owner", "org_member_no_team", "team_read_only", "team_read_write", "other_user")}
    creator = users["creator"].token
    org = unique("mx")
    with registry.http(creator) as c:
        ok(c.put(f"-/org/{org}", json={}), "create org")
        ok(c.put(f"-/org/{org}/user", json={"user": users["org_owner"].name, "role": "owner"}), "add owner")
        for role in ("org_member_no_team", "team_read_only", "team_read_write"):
            ok(c.put(f"-/org/{org}/user", json={"user": users[role].name, "role": "developer"}), f"add {role}")
        for team, role in (("readers", "team_read_only"), ("writers", "team_read_write")):
            ok(c.put(f"-/org/{org}/team", json={"name": team}), f"team {team}")
            ok(c.put(f"-/team/{org}/{team}/user", json={"user": users[role].name}), f"join {team}")

    packages = {"private": f"@{org}/{unique('secret')}", "public": f"@{org}/{unique('open')}"}
    decoy = f"@{org}/{unique('decoy')}"
    w = World(registry, org, creator, packages)
    for kind, name in packages.items():
        ok(w.publish(creator, name, "1.0.0", "restricted" if kind == "private" else "public"), f"publish {name}")
    ok(w.publish(creator, decoy, "1.0.0"), "publish decoy")
    with registry.http(creator) as c:
        for name in packages.values():
            # every member gets read-write on new org packages through `developers`; take it away so
            # the plain member has no team access at all, then grant the two teams theirs
            ok(c.request("DELETE", f"-/team/{org}/developers/package", json={"package": name}), "revoke developers")
            ok(c.put(f"-/team/{org}/readers/package", json={"package": name, "permissions": "read-only"}), "grant")
            ok(c.put(f"-/team/{org}/writers/package", json={"package": name, "permissions": "read-write"}), "grant")

    owner = users["org_owner"]

    def owner_token(**body) -> dict:
        with registry.http(owner.token) as c:
            return ok(c.post("-/npm/v1/tokens", json={"password": owner.password, "name": None, **body}),
                      f"token {body}")

    w.tokens = {"anonymous": None, **{role: users[role].token for role in users if role != "creator"}}
    w.tokens["read_only_token"] = owner_token(readonly=True)["token"]
    w.tokens["granular_this_package"] = owner_token(
        packages=list(packages.values()), packages_and_scopes_permission="read-write")["token"]
    w.tokens["granular_other_package"] = owner_token(
        packages=[decoy], packages_and_scopes_permission="read-write")["token"]
    expiring = owner_token(expires=1)
    expire_token(registry, expiring["key"])
    w.tokens["expired_token"] = expiring["token"]
    w.tokens["outside_cidr_token"] = owner_token(cidr_whitelist=["10.0.0.0/8"])["token"]

    # the restricted tokens are what they claim to be
    with w.client("expired_token") as c:
        resp = c.get("-/whoami")
        assert resp.status_code == 401 and "expired" in resp.json()["error"], resp.text
    with w.client("outside_cidr_token") as c:
        resp = c.get("-/whoami")
        assert resp.status_code == 401 and resp.headers.get("www-authenticate") == "ipaddress", resp.text
    for principal in ("read_only_token", "granular_this_package", "granular_other_package"):
        with w.client(principal) as c:
            assert c.get("-/whoami").json() == {"username": owner.name}, principal
    assert set(w.tokens) == set(MATRIX["private"]) == set(MATRIX["public"])
    return w


# --------------------------------------------------------------------------------------------------
# the operations: each sends one request for ``name`` (the real package or its ghost) and returns
# (response, check) where check() tells whether the write took effect on the real package
# --------------------------------------------------------------------------------------------------


def op_read(w: World, c: httpx.Client, kind: str, name: str):
    return c.get(escaped(name), headers={"accept": "application/json"}), None


def op_tarball(w: World, c: httpx.Client, kind: str, name: str):
    return c.get(f"{name}/-/{short_name(name)}-1.0.0.tgz"), None


def op_publish(w: World, c: httpx.Client, kind: str, name: str):
    version = f"1.0.{100 + next(w.versions)}"
    resp = c.put(escaped(name), json=publish_body(name, version), headers={"npm-command": "publish"})
    real = w.packages[kind]
    return resp, lambda: version in w.doc(real)["versions"]


def op_dist_tag(w: World, c: httpx.Client, kind: str, name: str):
    tag = f"mx{next(w.versions)}"
    resp = c.put(f"-/package/{escaped(name)}/dist-tags/{tag}", content=json.dumps("1.0.0"),
                 headers={"content-type": "application/json", "npm-command": "dist-tag"})
    real = w.packages[kind]
    return resp, lambda: tag in w.doc(real)["dist-tags"]


def op_deprecate(w: World, c: httpx.Client, kind: str, name: str):
    real = w.packages[kind]
    doc = w.doc(real)
    message = f"deprecated by matrix cell {next(w.versions)}"
    doc["versions"]["1.0.0"]["deprecated"] = message
    doc["_id"] = doc["name"] = name
    resp = c.put(f"{escaped(name)}/-rev/{quote(doc['_rev'])}", json=doc, headers={"npm-command": "deprecate"})
    return resp, lambda: w.doc(real)["versions"]["1.0.0"].get("deprecated") == message


def op_unpublish(w: World, c: httpx.Client, kind: str, name: str):
    real = w.packages[kind]
    version = f"2.0.{next(w.versions)}"
    ok(w.publish(w.creator, real, version), f"publish {real}@{version} to unpublish")
    doc = w.doc(real)
    del doc["versions"][version]
    doc["dist-tags"] = {"latest": "1.0.0"}
    doc["_id"] = doc["name"] = name
    resp = c.put(f"{escaped(name)}/-rev/{quote(doc['_rev'])}", json=doc, headers={"npm-command": "unpublish"})
    return resp, lambda: version not in w.doc(real)["versions"]


def op_access(w: World, c: httpx.Client, kind: str, name: str):
    status = "restricted" if kind == "private" else "public"
    return c.post(f"-/package/{escaped(name)}/access", json={"access": status},
                  headers={"npm-command": "access"}), None


OPS = {"read": op_read, "tarball": op_tarball, "publish": op_publish, "dist-tag": op_dist_tag,
       "deprecate": op_deprecate, "unpublish": op_unpublish, "access": op_access}
assert tuple(OPS) == OPERATIONS


def outcome(resp: httpx.Response) -> str:
    return "ok" if resp.status_code in (200, 201) else str(resp.status_code)


def comparable(resp: httpx.Response, names: tuple[str, ...]) -> tuple:
    """What a caller sees, with the package name masked (a refusal may name what was asked for).
    ``date`` and the hop-by-hop ``connection`` differ between any two answers: the server may
    close a connection whose request body it answered before reading, whatever the package."""
    body = resp.content
    for name in names:
        for form in (name, escaped(name), quote(name, safe="@")):
            body = body.replace(form.encode(), b"<name>")
    headers = sorted((k, v) for k, v in resp.headers.items() if k.lower() not in ("date", "connection"))
    return resp.status_code, headers, body


@pytest.mark.parametrize("kind,principal,op", CELLS, ids=[f"{k}-{p}-{o}" for k, p, o in CELLS])
def test_access_matrix(world, kind, principal, op):
    cell = f"{principal} × {op} on the {kind} package {world.packages[kind]}"
    want = expected(kind, principal, op)
    with world.client(principal) as c:
        resp, took_effect = OPS[op](world, c, kind, world.packages[kind])
    got = outcome(resp)
    assert got == want, f"LEAK? {cell}: expected {want}, got {resp.status_code} {resp.text[:300]}"
    if resp.status_code >= 400:
        assert resp.headers.get("content-type", "").startswith("application/json"), cell
        assert isinstance(resp.json().get("error"), str) and resp.json()["error"], f"{cell}: {resp.text}"
    if took_effect is not None:
        assert took_effect() == (want == "ok"), f"{cell}: answered {resp.status_code} but the change " + \
            ("did not happen" if want == "ok" else "HAPPENED")

    if kind == "private" and principal in HIDDEN_FROM and (principal, op) not in NOT_COMPARABLE:
        ghost = world.ghost(kind)
        with world.client(principal) as c:
            ghost_resp, _ = OPS[op](world, c, kind, ghost)
        assert comparable(resp, (world.packages[kind],)) == comparable(ghost_resp, (ghost,)), (
            f"LEAK: {cell} is distinguishable from the never-existing {ghost}:\n"
            f"  real:  {resp.status_code} {dict(resp.headers)} {resp.content[:300]!r}\n"
            f"  ghost: {ghost_resp.status_code} {dict(ghost_resp.headers)} {ghost_resp.content[:300]!r}")
