"""`ketch mirror` end to end: registry A holds 500 packages, `python -m ketch mirror A` copies them
into registry B (killed with SIGKILL halfway, then run again), and B must then serve every
packument and tarball exactly as A does, with its own URLs; a private package of A stays on A.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import ROOT, RegistryServer, escaped, short_name, unique

pytestmark = pytest.mark.e2e

COUNT = 500


def tarball_of(name: str, version: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, content in (("package.json", json.dumps({"name": name, "version": version}).encode()),
                              ("index.js", f"module.exports = {json.dumps(name + '@' + version)};\n".encode())):
            info = tarfile.TarInfo(f"package/{path}")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return gzip.compress(buf.getvalue(), mtime=0)


def publish_body(name: str, version: str, access: str | None = None) -> dict:
    data = tarball_of(name, version)
    return {
        "_id": name, "name": name, "dist-tags": {"latest": version}, "access": access,
        "versions": {version: {
            "name": name, "version": version, "license": "MIT", "description": f"mirror test {name}",
            "readme": f"# {name}\n", "_id": f"{name}@{version}",
            "dist": {"integrity": "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode(),
                     "shasum": hashlib.sha1(data).hexdigest(),
                     "tarball": f"http://127.0.0.1/{name}/-/{short_name(name)}-{version}.tgz"},
        }},
        "_attachments": {f"{name}-{version}.tgz": {"content_type": "application/octet-stream",
                                                   "data": base64.b64encode(data).decode(), "length": len(data)}},
    }


def publish_all(server: RegistryServer, token: str, bodies: list[dict]) -> None:
    def put(body: dict) -> None:
        with server.http(token) as client:
            resp = client.put(escaped(body["name"]), json=body)
        assert resp.status_code in (200, 201), resp.text

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, bodies))


def mirror_command(source: RegistryServer, target: RegistryServer, *args: str) -> tuple[list[str], dict]:
    cmd = [sys.executable, "-m", "ketch", "mirror", source.url, "--data-dir", str(target.data_dir),
           *(["--database-url", target.database_url] if target.database_url else []),
           *(["--storage-url", target.storage[0]] if target.storage else []), *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KETCH_")}
    env.update(target.storage[1] if target.storage else {})
    env["PYTHONPATH"] = str(ROOT)
    return cmd, env


def copied_packuments(target: RegistryServer) -> int:
    """Rows `ketch mirror` has committed so far in B's database."""
    sql = "SELECT count(*) FROM proxy_packuments"
    if target.database_url is None:
        with sqlite3.connect(target.data_dir / "ketch.sqlite3", timeout=30) as conn:
            return conn.execute(sql).fetchone()[0]

    async def count() -> int:
        import asyncpg

        conn = await asyncpg.connect(target.database_url, timeout=10)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(count())


def test_mirror_copies_everything_resumes_after_sigkill_and_keeps_private_packages_out(registry_factory, tmp_path):
    a, b = registry_factory.new(), registry_factory.new()
    owner = a.create_user("src")
    names = [unique("m") for _ in range(COUNT)]
    private = f"@{owner.name}/{unique('secret')}"
    bodies = [publish_body(n, "1.0.0") for n in names] + [publish_body(private, "1.0.0", "restricted")]
    bodies += [publish_body(n, "1.1.0") for n in names[:20]]
    publish_all(a, owner.token, bodies)

    cmd, env = mirror_command(a, b, "--concurrency", "8")
    log = open(tmp_path / "mirror-1.log", "wb")
    first = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while copied_packuments(b) < COUNT // 2 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.poll() is None, (tmp_path / "mirror-1.log").read_text()
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)
    assert COUNT // 2 <= copied_packuments(b) < COUNT

    # Changes between the runs: a deprecation, a new dist-tag, and a package unpublished after it was copied.
    with a.http(owner.token) as client:
        doc = client.get(escaped(names[1])).json()
        doc["versions"]["1.0.0"]["deprecated"] = "use 1.1.0"
        assert client.put(escaped(names[1]), json=doc).status_code in (200, 201)
        assert client.put(f"-/package/{escaped(names[2])}/dist-tags/old", json="1.0.0").status_code in (200, 201)
        rev = client.get(escaped(names[0])).json()["_rev"]
        assert client.delete(f"{escaped(names[0])}/-rev/{rev}").status_code == 200

    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "copied" in second.stderr

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda name: assert_same(a, b, name), names[1:]))
    assert b.packument(names[0]).status_code == 404  # unpublished on A after it was copied
    assert b.packument(private).status_code == 404
    assert a.packument(private, owner.token).status_code == 200


def assert_same(a: RegistryServer, b: RegistryServer, name: str) -> None:
    """B serves ``name``'s packument as A does (but with B's URLs), and the same tarball bytes."""
    a_base, b_base = a.url.rstrip("/"), b.url.rstrip("/")
    with a.http() as from_a, b.http() as from_b:
        want = from_a.get(escaped(name), headers={"accept": "application/json"})
        got = from_b.get(escaped(name), headers={"accept": "application/json"})
        assert want.status_code == got.status_code == 200, (name, got.status_code, got.text[:300])
        assert got.json() == json.loads(want.text.replace(a_base, b_base)), name
        for version in got.json()["versions"].values():
            url = version["dist"]["tarball"]
            assert url.startswith(b_base + "/")
            tarball = from_b.get(url)
            assert tarball.status_code == 200, (url, tarball.text[:300])
            assert tarball.content == from_a.get(url.replace(b_base, a_base)).content, url
