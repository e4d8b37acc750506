"""Upstream proxy-cache end to end: a Ketch "upstream", a fault-injecting gate in front of it, and
Ketch proxies configured with that gate as their uplink; installs run with the real npm and pnpm.

Catalogue ids (docs of the adversarial catalogue): U01/U02 dependency confusion, U04/U05 tarball
origins and redirects, U07 truncated tarballs, U08 bad upstream answers, U10 revalidation, U11
coalescing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import httpx
import pytest
from conftest import Npm, Pnpm, ServerFactory, escaped, short_name, tail, unique
from proxy_support import Gate

from tests.support.listener import Listener
from tests.support.publish import publish_body

pytestmark = pytest.mark.e2e

TIMEOUT = 3  # the uplink timeout the proxies are configured with


def _config(path, gate: Gate, max_age: float) -> str:
    path.write_text(f"""
[uplinks.gate]
url = "{gate.url}"
max_age = {max_age}
timeout = {TIMEOUT}
retries = 1
backoff = 0.05
max_fails = 1000

[[routes]]
packages = "@corp/*"

[[routes]]
packages = "*"
uplink = "gate"
""")
    return str(path)


class Setup:
    def __init__(self, base):
        self.factory = ServerFactory(base)
        self.gate = None
        try:
            self.upstream = self.factory.new()
            self.gate = Gate(self.upstream.url)
            # `cached`: metadata fresh for 10 minutes; `strict`: revalidates every time (max_age 0).
            self.cached = self.factory.new("--config", _config(base / "cached.toml", self.gate, 600))
            self.strict = self.factory.new("--config", _config(base / "strict.toml", self.gate, 0))
            # Two worker processes: misses must still reach the uplink once, not once per process.
            self.workers = self.factory.new("--workers", "2", "--config",
                                            _config(base / "workers.toml", self.gate, 600))
            self.publisher = self.upstream.create_user("pub")
        except BaseException:
            self.stop()  # servers started so far must not outlive a failed setup
            raise

    def stop(self):
        if self.gate is not None:
            self.gate.close()
        self.factory.close()

    def close(self):
        try:
            for server in (self.cached, self.strict, self.workers):
                log = tail(server.log_path, limit=500000)
                assert "Traceback (most recent call last)" not in log, log[-6000:]
        finally:
            self.stop()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    s = Setup(tmp_path_factory.mktemp("proxy"))
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _gate_passes(setup):
    setup.gate.reset()
    yield
    setup.gate.reset()


def publish(setup: Setup, client_factory, make_package, name: str, version: str = "1.0.0", **kw) -> None:
    npm = client_factory(Npm, user=setup.publisher, server=setup.upstream)
    npm.run("publish", cwd=make_package(name, version, **kw))


def get(server, path: str, **headers) -> httpx.Response:
    return httpx.get(server.url + path, headers=headers, timeout=30, trust_env=False)


# -- installs ----------------------------------------------------------------------------------

def test_cold_then_warm_install_with_npm_and_pnpm(setup, client_factory, make_package):
    dep, app = unique("dep"), unique("app")
    publish(setup, client_factory, make_package, dep)
    publish(setup, client_factory, make_package, app, dependencies={dep: "^1.0.0"})

    cold = client_factory(Npm, server=setup.cached)
    project = cold.new_project(dependencies={app: "^1.0.0"})
    cold.run("install", cwd=project)
    assert cold.require(app, cwd=project)["deps"][dep]["marker"] == f"{dep}@1.0.0"
    assert len(setup.gate.paths(f"/{app}/-/")) == 1 and len(setup.gate.paths(f"/{dep}/-/")) == 1

    doc = get(setup.cached, app).json()
    assert doc["versions"]["1.0.0"]["dist"]["tarball"] == f"{setup.cached.url}{app}/-/{app}-1.0.0.tgz"
    upstream_doc = get(setup.upstream, app).json()
    assert doc["versions"]["1.0.0"]["dist"]["integrity"] == upstream_doc["versions"]["1.0.0"]["dist"]["integrity"]

    before = len(setup.gate.seen)
    warm = client_factory(Npm, server=setup.cached)
    project = warm.new_project(dependencies={app: "^1.0.0"})
    warm.run("install", cwd=project)
    assert warm.require(app, cwd=project)["marker"] == f"{app}@1.0.0"
    pnpm = client_factory(Pnpm, server=setup.cached)
    project = pnpm.new_project(dependencies={app: "^1.0.0"})
    pnpm.run("install", cwd=project)
    assert pnpm.require(app, cwd=project)["deps"][dep]["marker"] == f"{dep}@1.0.0"
    asked = [p for _, p, _ in setup.gate.seen[before:] if app in p or dep in p]  # pnpm also looks itself up
    assert asked == [], "a warm install within max_age must not ask the uplink anything"


def test_upstream_down_still_installs_what_was_cached(setup, client_factory, make_package):
    name = unique("resilient")
    publish(setup, client_factory, make_package, name)
    first = client_factory(Npm, server=setup.strict)
    first.run("install", cwd=first.new_project(dependencies={name: "1.0.0"}))

    setup.gate.mode = "down"
    again = client_factory(Npm, server=setup.strict)
    project = again.new_project(dependencies={name: "1.0.0"})
    again.run("install", cwd=project)
    assert again.require(name, cwd=project)["marker"] == f"{name}@1.0.0"
    stale = get(setup.strict, name)
    assert stale.status_code == 200 and stale.headers["warning"].startswith("110 ")
    assert "stale" in stale.headers["x-ketch-upstream"]

    started = time.monotonic()
    missing = get(setup.strict, unique("never-cached"))
    assert missing.status_code == 502 and "uplink gate" in missing.json()["error"]
    assert time.monotonic() - started < TIMEOUT + 1


def test_slow_upstream_times_out_within_the_configured_timeout(setup, client_factory, make_package):
    name = unique("slow")
    publish(setup, client_factory, make_package, name)
    assert get(setup.strict, name).status_code == 200  # cached once

    setup.gate.mode, setup.gate.delay = "slow", TIMEOUT + 3
    started = time.monotonic()
    uncached = get(setup.cached, unique("slow-miss"))
    assert uncached.status_code == 504, uncached.text
    assert "did not answer within 3 s" in uncached.json()["error"]
    assert time.monotonic() - started < TIMEOUT + 1

    started = time.monotonic()
    stale = get(setup.strict, name)
    assert stale.status_code == 200 and stale.headers["warning"].startswith("110 ")
    assert time.monotonic() - started < TIMEOUT + 1

    setup.gate.mode = "drip"  # one byte a second: the whole answer must still fit the timeout
    started = time.monotonic()
    assert get(setup.cached, unique("drip-miss")).status_code in (404, 504)
    assert time.monotonic() - started < TIMEOUT + 1


@pytest.mark.parametrize("fault", ["corrupt", "truncate"])
def test_bad_tarball_from_upstream_is_refused_and_not_cached(setup, client_factory, make_package, fault):
    name = unique(fault)
    publish(setup, client_factory, make_package, name)
    setup.gate.mode = fault
    npm = client_factory(Npm, server=setup.cached)
    failed = npm.run("install", "--fetch-retries=0", cwd=npm.new_project(dependencies={name: "1.0.0"}), ok=False)
    if fault == "corrupt":
        assert "failed its integrity check" in failed.output, failed.output
    direct = get(setup.cached, f"{name}/-/{name}-1.0.0.tgz")
    assert direct.status_code == 502 and direct.headers["content-type"].startswith("application/json")

    setup.gate.mode = "pass"
    good = get(setup.cached, f"{name}/-/{name}-1.0.0.tgz")
    assert good.status_code == 200
    assert good.content == get(setup.upstream, f"{name}/-/{name}-1.0.0.tgz").content
    npm = client_factory(Npm, server=setup.cached)
    project = npm.new_project(dependencies={name: "1.0.0"})
    npm.run("install", cwd=project)
    assert npm.require(name, cwd=project)["marker"] == f"{name}@1.0.0"


def test_malformed_upstream_answers_are_refused_and_not_cached(setup, client_factory, make_package):
    name = unique("malformed")
    publish(setup, client_factory, make_package, name)
    path = "/" + name
    good = get(setup.upstream, name).json()
    wrong_name = dict(good, name="something-else", _id="something-else")
    wrong_version = json.loads(json.dumps(good))
    wrong_version["versions"]["1.0.0"]["name"] = "evil"
    for body, why in ((b"{not json", "invalid JSON"), (b"[1, 2]", "not a JSON object"),
                      (json.dumps(wrong_name).encode(), "describes 'something-else'"),
                      (json.dumps(wrong_version).encode(), "is of 'evil'")):
        setup.gate.canned[path] = (200, {"content-type": "application/json"}, body)
        resp = get(setup.cached, name)
        assert resp.status_code == 502 and why in resp.json()["error"], resp.text
    setup.gate.canned.clear()
    setup.gate.mode = "html"
    assert get(setup.cached, name).status_code == 502
    setup.gate.mode = "pass"
    assert get(setup.cached, name).json()["versions"]["1.0.0"]["name"] == name


@pytest.mark.parametrize("which", ["cached", "workers"])
def test_concurrent_cold_misses_share_one_upstream_request(setup, client_factory, make_package, which):
    name = unique("herd")
    publish(setup, client_factory, make_package, name)
    server = getattr(setup, which)
    setup.gate.mode, setup.gate.delay = "slow", 0.5
    with ThreadPoolExecutor(100) as pool:
        docs = list(pool.map(lambda _: get(server, name), range(100)))
        assert {d.status_code for d in docs} == {200}
        tarballs = list(pool.map(lambda _: get(server, f"{name}/-/{name}-1.0.0.tgz"), range(100)))
    assert {t.status_code for t in tarballs} == {200} and len({t.content for t in tarballs}) == 1
    assert setup.gate.paths(f"/{name}") == [f"/{name}", f"/{name}/-/{name}-1.0.0.tgz"]


def test_upstream_404s_are_remembered_briefly(setup):
    name = unique("nowhere")
    assert [get(setup.cached, name).status_code for _ in range(5)] == [404] * 5
    assert setup.gate.paths(name) == [f"/{name}"]  # one question upstream, not five


def test_revalidation_with_etag_and_304(setup, client_factory, make_package):
    name = unique("etag")
    publish(setup, client_factory, make_package, name)
    first = get(setup.strict, name)
    second = get(setup.strict, name)
    assert first.status_code == second.status_code == 200 and first.content == second.content
    requests = [(p, h) for _, p, h in setup.gate.seen if p == f"/{name}"]
    assert len(requests) == 2
    assert "if-none-match" not in {k.lower() for k in requests[0][1]}
    assert {k.lower(): v for k, v in requests[1][1].items()}["if-none-match"]

    publish(setup, client_factory, make_package, name, "1.1.0")
    assert "1.1.0" in get(setup.strict, name).json()["versions"]  # a 200 replaces the copy


# -- names that must never come from upstream ----------------------------------------------------

def _fake_packument(name: str, version: str, tarball: str) -> bytes:
    data = b"not really a tarball"
    return json.dumps({
        "_id": name, "name": name, "dist-tags": {"latest": version},
        "versions": {version: {"name": name, "version": version, "scripts": {"postinstall": "echo pwned"},
                               "dist": {"tarball": tarball, "shasum": hashlib.sha1(data).hexdigest(),
                                        "integrity": "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()}}},
    }).encode()


def test_dependency_confusion_local_always_wins(setup, client_factory, make_package):
    owner = setup.cached.create_user("corp")
    org_resp = httpx.put(f"{setup.cached.url}-/org/corp", json={}, headers={"authorization": f"Bearer {owner.token}"},
                         trust_env=False, timeout=30)
    assert org_resp.status_code in (201, 409), org_resp.text
    scoped = f"@corp/{unique('x')}"
    plain = unique("internal-utils")
    for name in (scoped, plain):
        setup.gate.canned["/" + quote(name, safe="@")] = (
            200, {"content-type": "application/json"},
            _fake_packument(name, "99.0.0", f"{setup.gate.url}{name}/-/{short_name(name)}-99.0.0.tgz"))
    local = client_factory(Npm, user=owner, server=setup.cached)
    local.run("publish", "--access", "restricted", cwd=make_package(scoped, "1.0.0"))
    local.run("publish", "--tag", "latest", cwd=make_package(plain, "1.0.0"))  # npm saw 99.0.0 upstream

    project = local.new_project(dependencies={scoped: "*", plain: "*"})
    local.run("install", cwd=project)
    assert local.require(scoped, cwd=project)["marker"] == f"{scoped}@1.0.0"
    assert local.require(plain, cwd=project)["marker"] == f"{plain}@1.0.0"
    assert list(get(setup.cached, plain).json()["versions"]) == ["1.0.0"]  # never merged
    assert get(setup.cached, escaped(scoped)).status_code == 404  # private: outsiders get nothing
    assert get(setup.cached, escaped(f"@corp/{unique('only-upstream')}")).status_code == 404
    assert setup.gate.paths("corp") == [], "names in a local-only scope must never be asked upstream"


def test_legacy_names_with_capitals_are_proxied(setup):
    """Names like JSONStream predate the lower-case rule: Ketch cannot publish them but serves them."""
    name = "Legacy" + unique("Stream")
    setup.gate.canned["/" + name] = (200, {"content-type": "application/json"},
                                     _fake_packument(name, "1.0.0", f"{setup.gate.url}{name}/-/{name}-1.0.0.tgz"))
    doc = get(setup.cached, name)
    assert doc.status_code == 200 and doc.json()["name"] == name
    assert get(setup.cached, "_private").status_code == 404 and setup.gate.paths("_private") == []


def test_publishing_a_version_that_exists_upstream_is_refused(setup, client_factory, make_package):
    name = unique("shadow")
    publish(setup, client_factory, make_package, name)
    user = setup.cached.create_user("shadower")
    npm = client_factory(Npm, user=user, server=setup.cached)
    # npm reads the (proxied) packument first and refuses on its own; other clients rely on the server.
    refused = npm.run("publish", cwd=make_package(name, "1.0.0"), ok=False)
    assert "cannot publish over the previously published versions: 1.0.0" in refused.output, refused.output
    raw = httpx.put(setup.cached.url + name, json=publish_body(name, "1.0.0"), trust_env=False, timeout=30,
                    headers={"authorization": f"Bearer {user.token}"})
    assert raw.status_code == 403 and "already exists on uplink gate" in raw.json()["error"], raw.text
    npm.run("publish", cwd=make_package(name, "2.0.0"))
    assert list(get(setup.cached, name).json()["versions"]) == ["2.0.0"]  # now local: local wins


def test_tarball_urls_and_redirects_never_leave_the_uplink_origin(setup):
    listener = Listener()
    try:
        targets = [f"http://127.0.0.1:{listener.port}/x.tgz", "http://169.254.169.254/latest/x.tgz",
                   f"http://localhost:{listener.port}/x.tgz", "file:///etc/passwd", "gopher://127.0.0.1:6379/_x"]
        for i, target in enumerate(targets):
            name = unique(f"ssrf{i}")
            setup.gate.canned["/" + name] = (200, {"content-type": "application/json"},
                                             _fake_packument(name, "1.0.0", target))
            doc = get(setup.cached, name).json()
            assert doc["versions"]["1.0.0"]["dist"]["tarball"] == f"{setup.cached.url}{name}/-/{name}-1.0.0.tgz"
            refused = get(setup.cached, f"{name}/-/{name}-1.0.0.tgz")
            assert refused.status_code == 502 and "may not contact" in refused.json()["error"], refused.text
        name = unique("redirect")
        setup.gate.canned["/" + name] = (200, {"content-type": "application/json"},
                                         _fake_packument(name, "1.0.0", f"{setup.gate.url}{name}/-/{name}-1.0.0.tgz"))
        setup.gate.canned[f"/{name}/-/{name}-1.0.0.tgz"] = (
            302, {"location": f"http://127.0.0.1:{listener.port}/x.tgz"}, b"")
        refused = get(setup.cached, f"{name}/-/{name}-1.0.0.tgz")
        assert refused.status_code == 502 and "redirected" in refused.json()["error"]
        time.sleep(0.3)
        assert listener.connections == 0
    finally:
        listener.close()


def test_proxy_metrics(setup, client_factory, make_package):
    name = unique("metered")
    publish(setup, client_factory, make_package, name)
    for _ in range(3):
        assert get(setup.cached, name).status_code == 200
    text = get(setup.cached, "-/metrics").text
    assert 'ketch_proxy_requests_total{kind="packument",result="miss",uplink="gate"}' in text
    assert 'ketch_proxy_requests_total{kind="packument",result="hit",uplink="gate"}' in text
    assert "ketch_upstream_request_duration_seconds_bucket" in text


def test_large_tarballs_stream_through_and_are_verified(setup):
    """Above 4 MB the proxy sends bytes on as they arrive, holding the last chunk back until the
    tarball matches its checksum: a corrupt one reaches no client whole and is not cached."""
    name = unique("large")
    body = publish_body(name, "1.0.0", files={"blob.bin": os.urandom(6 * 1024 * 1024)})
    put = httpx.put(setup.upstream.url + name, json=body, trust_env=False, timeout=60,
                    headers={"authorization": f"Bearer {setup.publisher.token}"})
    assert put.status_code == 201, put.text
    path = f"{name}/-/{name}-1.0.0.tgz"
    original = get(setup.upstream, path).content
    assert len(original) > 4 * 1024 * 1024

    setup.gate.mode = "corrupt"
    with pytest.raises(httpx.HTTPError):
        get(setup.cached, path).raise_for_status()
    setup.gate.mode = "pass"
    with ThreadPoolExecutor(5) as pool:
        copies = list(pool.map(lambda _: get(setup.cached, path), range(5)))
    assert [c.status_code for c in copies] == [200] * 5 and all(c.content == original for c in copies)
    assert len(setup.gate.paths(path)) == 2  # the corrupt attempt, then one shared download
    assert get(setup.cached, path).content == original  # now from the cache
    assert len(setup.gate.paths(path)) == 2


def test_installs_from_cache_after_the_upstream_server_is_stopped(tmp_path, client_factory, make_package):
    """No gate in between: the uplink is a real Ketch server, which is then shut down."""
    factory = ServerFactory(tmp_path / "servers")
    try:
        upstream = factory.new()
        config = tmp_path / "direct.toml"
        config.write_text(f'[uplinks.origin]\nurl = "{upstream.url}"\nmax_age = 0\ntimeout = {TIMEOUT}\n')
        proxy = factory.new("--config", str(config))
        publisher = upstream.create_user("origin")
        dep, app = unique("dep"), unique("app")
        npm = client_factory(Npm, user=publisher, server=upstream)
        npm.run("publish", cwd=make_package(dep))
        npm.run("publish", cwd=make_package(app, dependencies={dep: "^1.0.0"}))
        first = client_factory(Npm, server=proxy)
        first.run("install", cwd=first.new_project(dependencies={app: "^1.0.0"}))

        upstream.stop()
        again = client_factory(Npm, server=proxy)
        project = again.new_project(dependencies={app: "^1.0.0"})
        again.run("install", cwd=project)
        assert again.require(app, cwd=project)["deps"][dep]["marker"] == f"{dep}@1.0.0"
        assert get(proxy, app).headers["warning"].startswith("110 ")
        assert get(proxy, unique("uncached")).status_code == 502
    finally:
        factory.close()


def test_cache_prune_on_a_live_proxy_then_npm_refetches(setup, client_factory, make_package):
    """`ketch cache prune` while the proxy serves: what it drops is fetched again, and installs go on."""
    name = unique("pruned")
    publish(setup, client_factory, make_package, name)
    npm = client_factory(Npm, server=setup.cached)
    npm.run("install", cwd=npm.new_project(dependencies={name: "1.0.0"}))
    assert len(setup.gate.paths(f"/{name}")) == 2  # packument and tarball, once each

    server = setup.cached
    cmd = [sys.executable, "-m", "ketch", "cache", "prune", "--max-age", "0s", "--data-dir", str(server.data_dir),
           *(["--database-url", server.database_url] if server.database_url else []),
           *(["--storage-url", server.storage[0]] if server.storage else [])]
    env = {**os.environ, **(server.storage[1] if server.storage else {})}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert get(server, name).status_code == 200
    assert len(setup.gate.paths(f"/{name}")) == 3, "the pruned packument must be fetched again"

    again = client_factory(Npm, server=server)
    project = again.new_project(dependencies={name: "1.0.0"})
    again.run("install", cwd=project)
    assert again.require(name, cwd=project)["marker"] == f"{name}@1.0.0"
    assert len(setup.gate.paths(f"/{name}/-/")) == 2, "the pruned tarball must be fetched again"
