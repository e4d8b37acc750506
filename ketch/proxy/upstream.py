"""Talking to one uplink: timeouts, retries with backoff, a circuit breaker, and size caps.

Only the uplink's own origin (and origins the operator lists in ``tarball_origins``) is ever
contacted: a tarball URL or redirect pointing anywhere else — another host, an internal address,
another scheme — is refused, not followed (catalogue U04/U05). The token is sent to the uplink's
own origin only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit

import httpx

from ketch.config import Uplink
from ketch.ops.metrics import UPSTREAM_ERRORS, UPSTREAM_LATENCY

_MAX_REDIRECTS = 3


class UpstreamError(Exception):
    """The uplink could not give an answer (unreachable, too slow, 5xx, bad data)."""

    def __init__(self, message: str, *, timeout: bool = False):
        super().__init__(message)
        self.timeout = timeout


class UpstreamMissing(Exception):
    """The uplink answered that it does not have this (404/410)."""


@dataclass
class Answer:
    status: int  # 200 or 304
    body: bytes
    etag: str | None
    # Set instead of ``body`` for a 200 larger than the caller's ``stream_above``: the rest of the
    # body, read as the caller goes (the upstream connection closes when it ends or is closed).
    stream: AsyncIterator[bytes] | None = None
    length: int | None = None


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme, 0)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


class UpstreamClient:
    def __init__(self, name: str, config: Uplink, max_body: int):
        self.name = name
        self.config = config
        self.base = config.url.rstrip("/") + "/"
        self.origin = origin_of(self.base)
        self.allowed = {self.origin} | {origin_of(o) for o in config.tarball_origins}
        self.max_body = max_body
        self.failures = 0
        self.skip_until = 0.0
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(config.timeout, connect=config.connect_timeout), follow_redirects=False,
            trust_env=False, headers={"user-agent": "ketch-proxy", "npm-in-ci": "false"},
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32))

    async def close(self) -> None:
        await self._client.aclose()

    def packument_url(self, name: str) -> str:
        return self.base + quote(name, safe="@")  # @scope/name → @scope%2fname, as npm sends it

    def may_fetch(self, url: str) -> bool:
        return urlsplit(url).scheme in ("http", "https") and origin_of(url) in self.allowed

    async def packument(self, name: str, etag: str | None) -> Answer:
        headers = {"accept": "application/json"}
        if etag:
            headers["if-none-match"] = etag
        return await self._get("packument", self.packument_url(name), headers, self.max_body)

    async def tarball(self, url: str, stream_above: int) -> Answer:
        """The tarball at ``url``: whole in ``body``, or as a ``stream`` when larger than ``stream_above``."""
        if not self.may_fetch(url):
            raise UpstreamError(f"uplink {self.name} names a tarball at {_show(url)}, an origin Ketch may not "
                                f"contact (allowed: the uplink's own origin and tarball_origins)")
        return await self._get("tarball", url, {"accept": "*/*"}, self.config.max_tarball_mb * 1024 * 1024,
                               stream_above)

    async def _get(self, kind: str, url: str, headers: dict, cap: int, stream_above: int | None = None) -> Answer:
        if time.monotonic() < self.skip_until:
            raise UpstreamError(f"uplink {self.name} failed {self.failures} times in a row; it is skipped "
                                f"for {self.skip_until - time.monotonic():.0f} s more")
        started = time.perf_counter()
        delay = self.config.backoff
        try:
            async with asyncio.timeout(self.config.timeout):
                for attempt in range(self.config.retries + 1):
                    try:
                        answer = await self._once(url, headers, cap, stream_above)
                        break
                    except _Retryable as e:
                        if attempt == self.config.retries:
                            raise UpstreamError(str(e)) from None
                        await asyncio.sleep(delay)
                        delay *= 2
        except TimeoutError:
            self._failed("timeout")
            raise UpstreamError(f"uplink {self.name} did not answer within {self.config.timeout:g} s",
                                timeout=True) from None
        except UpstreamError:
            self._failed("error")
            raise
        except UpstreamMissing:
            self.failures = 0
            raise
        finally:
            UPSTREAM_LATENCY.labels(self.name, kind).observe(time.perf_counter() - started)
        self.failures = 0
        return answer

    def _failed(self, reason: str) -> None:
        UPSTREAM_ERRORS.labels(self.name, reason).inc()
        self.failures += 1
        if self.failures >= self.config.max_fails:
            self.skip_until = time.monotonic() + self.config.fail_timeout

    async def _once(self, url: str, headers: dict, cap: int, stream_above: int | None) -> Answer:
        for _ in range(_MAX_REDIRECTS + 1):
            sent = dict(headers)
            if self.config.token and origin_of(url) == self.origin:
                sent["authorization"] = f"Bearer {self.config.token}"
            response = None
            try:
                response = await self._client.send(self._client.build_request("GET", url, headers=sent),
                                                   stream=True)
                status = response.status_code
                if status in (301, 302, 303, 307, 308):
                    target = urljoin(url, response.headers.get("location", ""))
                    if not self.may_fetch(target):
                        raise UpstreamError(f"uplink {self.name} redirected to {_show(target)}, an origin "
                                            f"Ketch may not contact")
                    url = target
                    continue
                if status == 304:
                    return Answer(304, b"", response.headers.get("etag"))
                if status in (404, 410):
                    raise UpstreamMissing()
                if status >= 500 or status == 429:
                    raise _Retryable(f"uplink {self.name} answered {status}")
                if status != 200:
                    raise UpstreamError(f"uplink {self.name} answered {status}")
                declared = response.headers.get("content-length")
                length = int(declared) if declared and declared.isdigit() else None
                if length is not None and length > cap:
                    raise UpstreamError(f"uplink {self.name} offered {length} bytes; the limit is {cap}")
                if stream_above is not None and (length is None or length > stream_above):
                    streamed, response = _body(self.name, response, cap), None  # the stream closes it
                    return Answer(200, b"", None, stream=streamed, length=length)
                chunks, size = [], 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > cap:
                        raise UpstreamError(f"uplink {self.name} sent more than {cap} bytes")
                    chunks.append(chunk)
                return Answer(200, b"".join(chunks), response.headers.get("etag"))
            except httpx.TimeoutException as e:
                raise _Retryable(f"uplink {self.name} timed out ({type(e).__name__})") from None
            except httpx.HTTPError as e:
                # Refused connections, resets, and bodies cut short (Content-Length not reached).
                raise _Retryable(f"uplink {self.name}: {type(e).__name__}: {e}") from None
            finally:
                if response is not None:
                    await response.aclose()
        raise UpstreamError(f"uplink {self.name} redirected more than {_MAX_REDIRECTS} times")


async def _body(name: str, response: httpx.Response, cap: int) -> AsyncIterator[bytes]:
    """The rest of a streamed body; raises UpstreamError when it is cut short or exceeds ``cap``."""
    size = 0
    try:
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > cap:
                raise UpstreamError(f"uplink {name} sent more than {cap} bytes")
            yield chunk
    except httpx.HTTPError as e:
        raise UpstreamError(f"uplink {name}: {type(e).__name__}: {e}") from None
    finally:
        await response.aclose()


class _Retryable(Exception):
    pass


def _show(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme else repr(url[:80])
