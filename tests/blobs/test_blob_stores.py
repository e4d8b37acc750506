"""One behaviour suite for every BlobStore: the filesystem store and the S3 store (on SeaweedFS).

Tests taking ``make_store`` run against both; the ones that only make sense for S3 (presigned
redirects, outages, bucket creation, URL/env parsing) are at the end.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import time
import uuid

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

from ketch.blobs import blob_key
from ketch.blobs.files import FileBlobStore
from ketch.blobs.s3 import BlobStoreUnavailable, S3BlobStore

IMMUTABLE = {"cache-control": "public, max-age=31536000, immutable"}


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def key_for(data: bytes) -> str:
    return blob_key(hashlib.sha512(data).hexdigest())


@pytest.fixture(params=["file", "s3"])
def make_store(request, tmp_path):
    """``make_store(name)``: a store; equal names share one location, different names are
    isolated (a directory each for files, a key prefix each in one bucket for S3)."""
    if request.param == "file":
        return lambda name="main": FileBlobStore(tmp_path / "blobs" / name)
    server = request.getfixturevalue("seaweed")
    run = unique("run")
    return lambda name="main": server.store(prefix=f"{run}/{name}")


@pytest.fixture
def store(make_store):
    return make_store()


def blob_app(store) -> Starlette:
    """The tarball route in miniature: the store's response, or 404 when it has none."""

    async def endpoint(request: Request):
        response = await store.response(request.path_params["key"], dict(IMMUTABLE))
        return response if response is not None else PlainTextResponse("missing", status_code=404)

    return Starlette(routes=[Route("/{key:path}", endpoint)])


class CountBodyMessages:
    def __init__(self, app):
        self.app = app
        self.body_messages = 0

    async def __call__(self, scope, receive, send):
        async def counting_send(message):
            if message["type"] == "http.response.body":
                self.body_messages += 1
            await send(message)

        await self.app(scope, receive, counting_send)


async def listed(store) -> list[str]:
    keys = store.keys()
    return [key async for key in keys]


def asgi_client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ketch.test")


# -- the shared behaviour ----------------------------------------------------------------------

async def test_put_get_roundtrip(store):
    for data in (b"", b"x", os.urandom(10_000), os.urandom(1024 * 1024 + 17)):
        key = key_for(data)
        await store.put(key, data)
        assert await store.get(key) == data
        assert await store.exists(key)


async def test_put_again_is_idempotent(store):
    data = os.urandom(50_000)
    key = key_for(data)
    await store.put(key, data)
    await store.put(key, data)
    await asyncio.gather(*(store.put(key, data) for _ in range(5)))  # racing writers of one blob
    assert await store.get(key) == data
    assert await listed(store) == [key]


async def test_exists_and_delete(store):
    data = b"to be deleted"
    key = key_for(data)
    assert not await store.exists(key)
    await store.put(key, data)
    assert await store.exists(key)
    await store.delete(key)
    assert not await store.exists(key)
    with pytest.raises(KeyError):
        await store.get(key)
    await store.delete(key)  # deleting what is gone is fine


async def test_missing_keys(store):
    key = key_for(b"never stored")
    with pytest.raises(KeyError):
        await store.get(key)
    assert not await store.exists(key)
    assert await store.response(key, dict(IMMUTABLE)) is None
    async with asgi_client(blob_app(store)) as client:
        assert (await client.get(f"/{key}")).status_code == 404


async def test_keys_lists_every_blob(store):
    assert await listed(store) == []
    blobs = [os.urandom(100 + i) for i in range(7)]
    for data in blobs:
        await store.put(key_for(data), data)
    assert sorted(await listed(store)) == sorted(key_for(d) for d in blobs)


async def test_prefixes_isolate_stores(make_store):
    # "tenant" is a string prefix of "tenant2": isolation must be by path segment, not by string.
    one, two, one_again = make_store("tenant"), make_store("tenant2"), make_store("tenant")
    a, b = b"blob of one", b"blob of two"
    await one.put(key_for(a), a)
    await two.put(key_for(b), b)
    assert await listed(one) == [key_for(a)]
    assert await listed(two) == [key_for(b)]
    assert not await one.exists(key_for(b))
    with pytest.raises(KeyError):
        await two.get(key_for(a))
    assert await one_again.get(key_for(a)) == a


async def test_response_streams_a_large_blob(store):
    data = os.urandom(5 * 1024 * 1024 + 3)
    key = key_for(data)
    await store.put(key, data)
    app = CountBodyMessages(blob_app(store))
    async with asgi_client(app) as client:
        response = await client.get(f"/{key}")
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(data))
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["cache-control"] == IMMUTABLE["cache-control"]
    assert "transfer-encoding" not in response.headers
    assert hashlib.sha512(response.content).digest() == hashlib.sha512(data).digest()
    assert app.body_messages > 2, "the body should be sent in chunks, not as one buffer"


async def test_bad_keys_are_refused(store):
    for key in ("../escape", "/absolute", "sha512/../../x"):
        with pytest.raises(ValueError):
            await store.put(key, b"x")
        with pytest.raises(ValueError):
            await store.get(key)


async def test_ping(store):
    await store.ping()


# -- S3 only -----------------------------------------------------------------------------------

async def test_s3_response_is_streamed_not_buffered(seaweed):
    store = seaweed.store(prefix=unique())
    data = os.urandom(3 * 1024 * 1024)
    await store.put(key_for(data), data)
    response = await store.response(key_for(data), {})
    assert isinstance(response, StreamingResponse)
    body = b"".join([chunk async for chunk in response.body_iterator])
    assert body == data


async def test_s3_redirect_to_presigned_url(seaweed):
    store = seaweed.store(prefix=unique(), redirect=True, presign_expiry=120)
    data = os.urandom(200_000)
    key = key_for(data)
    await store.put(key, data)
    async with asgi_client(blob_app(store)) as client:
        redirect = await client.get(f"/{key}")
        assert (await client.get(f"/{key_for(b'missing')}")).status_code == 404
    assert redirect.status_code in (302, 307)
    location = redirect.headers["location"]
    assert location.startswith(seaweed.endpoint + "/") and "X-Amz-Signature=" in location
    assert "X-Amz-Expires=120" in location
    # The year-long cache policy belongs to the bytes, not to a URL that expires.
    assert redirect.headers["cache-control"] == "public, max-age=60"
    async with httpx.AsyncClient() as client:  # a plain client, as npm would follow it
        download = await client.get(location)
    assert download.status_code == 200
    assert download.content == data
    assert download.headers["content-type"] == "application/octet-stream"


async def test_s3_objects_are_stored_as_octet_stream(seaweed):
    # Without a Content-Type SeaweedFS sniffs one from the bytes (text/plain here). Note that it
    # also treats application/octet-stream as "unknown" and replaces it with a guess from the
    # key's extension (.tgz → application/x-compressed-tar); Ketch's keys have no extension.
    store = seaweed.store(prefix=unique(), redirect=True)
    for data in (b"hello text", b"\x1f\x8b\x08\x00 gzip-ish"):
        key = key_for(data)
        await store.put(key, data)
        response = await store.response(key, {})
        async with httpx.AsyncClient() as client:
            download = await client.get(response.headers["location"])
        assert download.headers["content-type"] == "application/octet-stream"


async def test_s3_creates_missing_bucket_once_even_when_racing(seaweed):
    bucket = unique("bucket")
    stores = [seaweed.store(bucket=bucket, prefix=f"node{i}") for i in range(6)]
    assert await listed(stores[0]) == []  # listing a missing bucket: empty, not an error
    assert await stores[0].exists("nothing") is False
    await asyncio.gather(*(s.ensure_bucket() for s in stores))
    await asyncio.gather(*(s.ensure_bucket() for s in stores))
    # First use is usually a put: it finds no bucket, creates it (here two nodes race) and retries.
    other = unique("bucket")
    racing = [seaweed.store(bucket=other, prefix=f"node{i}") for i in range(2)]
    await asyncio.gather(*(s.put("k", b"v") for s in racing))
    assert [await s.get("k") for s in racing] == [b"v", b"v"]
    await stores[3].put("k", b"v3")
    assert await listed(stores[3]) == ["k"]


async def test_s3_wrong_credentials_are_unavailable(seaweed):
    store = S3BlobStore(
        "ketch-blobs", unique(), endpoint_url=seaweed.endpoint, access_key_id="wrong",
        secret_access_key="wrong-secret", region=seaweed.region)
    for call in (store.ping(), store.get("k"), store.put("k", b"v")):
        with pytest.raises(BlobStoreUnavailable):
            await call


async def _expect_unavailable(call, limit: float) -> float:
    started = time.monotonic()
    with pytest.raises(BlobStoreUnavailable):
        await asyncio.wait_for(call, timeout=limit + 10)
    elapsed = time.monotonic() - started
    assert elapsed < limit, f"took {elapsed:.1f}s to give up"
    return elapsed


async def _once_back(call, limit: float = 30.0):
    """The result of ``call()`` once the restarted server serves again: its volume server can
    answer 500 for a moment after the S3 gateway is up. Ketch reports that as unavailable (a 503
    for clients, who retry) and must then recover by itself, without a restart."""
    deadline = time.monotonic() + limit
    while True:
        try:
            return await call()
        except BlobStoreUnavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def test_s3_outage_is_unavailable_then_recovers(own_seaweed):
    store = own_seaweed.store(prefix=unique())
    data = os.urandom(300_000)
    key = key_for(data)
    await store.put(key, data)

    own_seaweed.process.stop()
    for call in (
        store.get(key),
        store.put(key_for(b"new"), b"new"),
        store.exists(key),
        store.delete(key),
        store.response(key, {}),
        store.ping(),
        listed(store),
    ):
        await _expect_unavailable(call, limit=5.0)

    own_seaweed.process.start()  # same ports, same data, same store object
    assert await _once_back(lambda: store.get(key)) == data
    await store.put(key_for(b"new"), b"new")
    assert sorted(await listed(store)) == sorted([key, key_for(b"new")])
    async with asgi_client(blob_app(store)) as client:
        assert (await client.get(f"/{key}")).content == data
    await store.ping()


async def test_s3_frozen_server_times_out(own_seaweed):
    """A server that accepts connections but never answers (SIGSTOP) must not hang a request."""
    store = own_seaweed.store(prefix=unique(), timeout=1.0, retry_timeout=2.0)
    await store.put("k", b"v")
    os.kill(own_seaweed.process.pid, signal.SIGSTOP)
    try:
        _wait_until_stopped(own_seaweed.process.pid)
        await _expect_unavailable(store.get("k"), limit=8.0)
        await _expect_unavailable(store.ping(), limit=8.0)
    finally:
        os.kill(own_seaweed.process.pid, signal.SIGCONT)
    assert await store.get("k") == b"v"


def _wait_until_stopped(pid: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as fh:
            if fh.read().rsplit(")", 1)[1].split()[0] == "T":
                return
        time.sleep(0.01)
    raise AssertionError("SeaweedFS did not stop")



# -- configuration -----------------------------------------------------------------------------

def test_from_url_bucket_and_prefix(monkeypatch):
    for var in ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var, raising=False)
    store = S3BlobStore.from_url("s3://my-bucket/some/prefix/", endpoint_url="http://127.0.0.1:9")
    assert (store.bucket, store.prefix, store.region) == ("my-bucket", "some/prefix", "us-east-1")
    assert S3BlobStore.from_url("s3://my-bucket").prefix == ""
    for bad in ("s3:///prefix", "file:///x", "s3://b/p", "s3://bucket/p?x=1", "https://bucket/p"):
        with pytest.raises(ValueError):
            S3BlobStore.from_url(bad)
    with pytest.raises(ValueError):
        S3BlobStore("my-bucket", access_key_id="only-the-id")


def test_environment_then_explicit_values(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "env-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    from_env = S3BlobStore.from_url("s3://my-bucket")
    assert (from_env.endpoint_url, from_env.region) == ("http://127.0.0.1:1", "eu-west-1")
    explicit = S3BlobStore.from_url(  # "" means unset, as an empty KETCH_S3_* variable would
        "s3://my-bucket", endpoint_url="http://127.0.0.1:2", region="eu-central-1",
        access_key_id="", secret_access_key=None)
    assert (explicit.endpoint_url, explicit.region) == ("http://127.0.0.1:2", "eu-central-1")


async def test_explicit_values_reach_the_server(seaweed, monkeypatch):
    # Wrong values in the environment must lose against the explicit ones.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "wrong")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    store = seaweed.store(prefix=unique())
    await store.put("k", b"v")
    assert await store.get("k") == b"v"


async def test_s3_small_blobs_are_served_from_the_process_cache(own_seaweed):
    store = own_seaweed.store(prefix=unique(), cache_bytes=8 * 1024 * 1024)
    small, large = os.urandom(50_000), os.urandom(2 * 1024 * 1024)
    await store.put(key_for(small), small)
    await store.put(key_for(large), large)
    async with asgi_client(blob_app(store)) as client:
        first = await client.get(f"/{key_for(small)}")
        assert first.content == small and first.headers["content-length"] == str(len(small))
        assert (await client.get(f"/{key_for(large)}")).content == large
    assert store.cache.get(key_for(small)) is not None
    assert store.cache.get(key_for(large)) is None  # above the per-item cap: always streamed

    own_seaweed.process.stop()  # content-addressed bytes never change: the cached copy stays good
    async with asgi_client(blob_app(store)) as client:
        again = await client.get(f"/{key_for(small)}")
        assert again.content == small
        assert again.headers["etag"] == first.headers["etag"]
        assert again.headers["cache-control"] == IMMUTABLE["cache-control"]
    await _expect_unavailable(store.response(key_for(large), {}), limit=5.0)
    own_seaweed.process.start()
    await _once_back(lambda: store.delete(key_for(small)))
    assert store.cache.get(key_for(small)) is None
    assert await _once_back(lambda: store.response(key_for(small), {})) is None


def test_blob_cache_is_bounded_least_recently_used_first():
    from ketch.blobs.cache import BlobCache

    cache = BlobCache(8000, max_item=1000)
    for i in range(8):
        cache.put(f"k{i}", bytes(1000), {})
    cache.get("k0")  # now the most recently used
    cache.put("k8", bytes(1000), {})
    assert cache.bytes == 8000
    assert cache.get("k0") is not None and cache.get("k1") is None
    assert not cache.fits(1001) and cache.fits(1000)
    assert not BlobCache(0).fits(1)
