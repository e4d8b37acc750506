"""Property tests: whatever JSON arrives at `PUT /<name>`, the answer is never a 500, every error is
npm-shaped, and a version appears only when the request was a valid publish that was acknowledged.
Plus a sweep of odd methods and paths: every error answer is JSON with an "error" key."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NPM_KEYS = ["_id", "name", "versions", "_attachments", "dist-tags", "access", "maintainers", "users", "_rev",
            "deprecated", "dist", "data", "length", "integrity", "shasum", "tarball", "version", "readme",
            "content_type", "latest", "1.0.0", "2.0.0", "__proto__", "constructor", "description", "time"]

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2 ** 70), max_value=2 ** 70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40)
           | st.sampled_from(["1.0.0", "latest", "", "sha512-AAAA", "restricted", "public", "../x", "\u202e"]))
keys = st.sampled_from(NPM_KEYS) | st.text(max_size=12)
json_values = st.recursive(scalars, lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(keys, children, max_size=5), max_leaves=25)

def fuzz(examples: int):
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def target(reg, alice) -> str:
    name = reg.unique("fuzz")
    reg.publish_ok(alice, name, "1.0.0")
    reg.publish_ok(alice, name, "1.1.0")
    return name


def _versions(reg, name: str, user) -> set[str]:
    resp = reg.packument(name, user)
    return set(resp.json()["versions"]) if resp.status_code == 200 else set()


def _check_answer(resp) -> None:
    assert resp.status_code < 500, f"{resp.status_code}: {resp.text[:300]}"
    if resp.status_code >= 400:
        assert resp.headers["content-type"].startswith("application/json"), resp.headers
        body = resp.json()
        assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], body
    else:
        assert resp.headers["content-type"].startswith("application/json")
        resp.json()


@fuzz(60)
@given(body=json_values)
def test_random_json_never_500s_and_never_adds_a_version(reg, alice, target, body):
    before = _versions(reg, target, alice)
    for path in (f"/{target}", f"/{target}/-rev/1-x"):
        resp = reg.client.put(path, content=json.dumps(body).encode(),
                              headers={"content-type": "application/json", **alice.auth})
        _check_answer(resp)
    after = _versions(reg, target, alice)
    assert after == before, f"random JSON changed the version list: {before} -> {after}"


@fuzz(40)
@given(body=st.dictionaries(keys, json_values, max_size=8))
def test_random_objects_to_a_new_name_never_create_a_package(reg, alice, body):
    name = reg.unique("fz")
    resp = reg.client.put(f"/{name}", content=json.dumps(body).encode(),
                          headers={"content-type": "application/json", **alice.auth})
    _check_answer(resp)
    assert resp.status_code >= 400
    assert reg.packument(name).status_code == 404


def _paths(doc, prefix=()):
    """Every path (tuple of keys/indexes) inside a JSON document."""
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, prefix + (i,))


@fuzz(40)
@given(version=st.sampled_from(["3.0.0", "3.0.1-rc.1", "4.0.0+build"]), pick=st.integers(0, 10_000),
       how=st.sampled_from(["replace", "delete"]), value=json_values)
def test_mutated_publish_bodies_are_all_or_nothing(reg, alice, version, pick, how, value):
    """A valid npm publish body with one random change somewhere inside it: either acknowledged and
    complete, or refused and absent."""
    name = reg.unique("mut")
    body = reg.publish_body(name, version)
    paths = [p for p in _paths(body) if p]
    path = paths[pick % len(paths)]
    mutated = copy.deepcopy(body)
    parent = mutated
    for key in path[:-1]:
        parent = parent[key]
    if how == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    resp = reg.client.put(f"/{name}", content=json.dumps(mutated).encode(),
                          headers={"content-type": "application/json", **alice.auth})
    _check_answer(resp)
    doc = reg.packument(name)
    if resp.status_code < 300:
        # acknowledged: the version is there, and its tarball is the attached one
        assert doc.status_code == 200, doc.text
        versions = doc.json()["versions"]
        assert list(versions) == [version]
        served = reg.tarball(name, version)
        assert served.status_code == 200
        assert reg.integrity_of(served.content) == versions[version]["dist"]["integrity"]
    else:
        assert doc.status_code == 404, f"a refused publish ({resp.status_code}) left a package: {doc.text[:200]}"


# ---- odd methods and paths -----------------------------------------------------------------------

ODD_PATHS = ["/", "/-", "/-/", "/-/nope", "/-/package/", "/-/package/x", "/-/package/x/dist-tags/", "/x/-",
             "/x/-/", "/x/-rev", "/x/-rev/", "/x/y/z/w/v", "/@", "/@s", "/@s/", "/@s/x/-/x-1.0.0.tgz/-rev",
             "/-/user/", "/-/user/org.couchdb.user:", "/-/v1/done/", "/-/npm/v1/tokens/token/",
             "/-/_view/starredByUser", "/-/_view/starredByUser?key=%22", "/x?write=true&write=false",
             "/%ff%fe", "/x/-/%ff.tgz", "/" + "a" * 5000, "/-/package/" + "%2f" * 100 + "/dist-tags"]
METHODS = ["GET", "HEAD", "PUT", "DELETE", "POST", "PATCH", "OPTIONS"]


@pytest.mark.parametrize("method", METHODS)
def test_odd_requests_get_json_errors(reg, alice, method):
    for path in ODD_PATHS:
        for headers in ({}, alice.auth):
            kwargs = {"content": b"{}", "headers": {"content-type": "application/json", **headers}} \
                if method in ("PUT", "POST", "PATCH") else {"headers": headers}
            resp = reg.client.request(method, path, **kwargs)
            assert resp.status_code < 500, (method, path, resp.status_code, resp.text[:300])
            if resp.status_code >= 400 and method != "HEAD":
                assert resp.headers.get("content-type", "").startswith("application/json"), (method, path, resp.text)
                assert isinstance(resp.json().get("error"), str), (method, path, resp.text)
