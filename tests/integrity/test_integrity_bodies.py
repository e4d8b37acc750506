"""Request bodies on the wire (adversarial.md P10, R14): chunked bodies over the cap, lying
Content-Length, clients that disconnect mid-upload — spoken over raw sockets to a real server whose
publish cap is small (KETCH_MAX_BODY_SIZE=100000). Each must end in a clear answer or a closed
connection, with nothing stored and the server still serving."""

from __future__ import annotations

import json
import os
import random
import socket
import time
from pathlib import Path

import pytest

CAP = 100_000


@pytest.fixture(scope="module")
def capped(module_server_factory):
    """A server whose publish cap is CAP bytes, with one signed-up user (``server.user``)."""
    server = module_server_factory(env={"KETCH_MAX_BODY_SIZE": str(CAP)})
    server.user = server.signup("wire")
    yield server
    assert server.alive(), "the server died:\n" + server.log_tail()
    server.stop()
    result = server.fsck()
    assert result.returncode == 0, f"fsck after the wire tests:\n{result.stdout}\n{result.stderr}"


# ---- raw HTTP/1.1 --------------------------------------------------------------------------------

class Wire:
    def __init__(self, port: int, timeout: float = 10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.closed_while_sending = False

    def send(self, data: bytes) -> bool:
        """Send, reporting (not raising) a connection the server already closed."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            self.closed_while_sending = True
            return False

    def response(self, timeout: float = 10) -> tuple[int | None, dict, bytes]:
        """(status, headers, body) of the next response; status None when the connection just closed."""
        self.sock.settimeout(timeout)
        buf = b""
        try:
            while b"\r\n\r\n" not in buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return None, {}, buf
                buf += chunk
            head, _, rest = buf.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
            length = int(headers.get("content-length", "0"))
            while len(rest) < length:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                rest += chunk
            return status, headers, rest[:length]
        except (TimeoutError, ConnectionResetError):
            return None, {}, buf

    def close(self) -> None:
        self.sock.close()


def head(server, method: str, path: str, extra: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}", "Content-Type: application/json",
             f"Authorization: Bearer {server.user.token}", *(f"{k}: {v}" for k, v in extra.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def big_body(server, name: str, size: int) -> bytes:
    """A *valid* publish body of about ``size`` bytes: were the cap not enforced, it would be stored."""
    payload = random.Random(size).randbytes(size * 3 // 4)
    return json.dumps(server.publish_body(name, "1.0.0", files={"payload.bin": payload})).encode()


def assert_nothing_stored(server, name: str, blobs_before: set[str]) -> None:
    assert server.packument(name) is None, f"{name} exists after a refused upload"
    assert server.blob_files() == blobs_before, "a refused upload stored a blob"
    tmp = server.data_dir / "tarballs" / "tmp"
    assert not tmp.exists() or not any(tmp.iterdir()), f"temporary files left behind: {list(tmp.iterdir())}"
    assert server.alive()


def assert_json_error(status, headers, body, *statuses) -> None:
    assert status in statuses, (status, body[:300])
    assert headers.get("content-type", "").startswith("application/json"), headers
    assert isinstance(json.loads(body).get("error"), str)


# ---- P10: over the cap -------------------------------------------------------------------------

def test_p10_honest_content_length_over_the_cap_is_413_before_the_body(capped):
    server = capped
    name = server.unique("cl")
    blobs = server.blob_files()
    wire = Wire(server.port)
    try:
        start = time.monotonic()
        wire.send(head(server, "PUT", "/" + name, {"Content-Length": str(100 * 1024 * 1024)}))
        status, headers, body = wire.response(timeout=5)  # no body byte sent: the answer must not wait for it
        assert time.monotonic() - start < 3
        assert_json_error(status, headers, body, 413)
    finally:
        wire.close()
    assert_nothing_stored(server, name, blobs)


def test_p10_chunked_body_over_the_cap_is_refused(capped):
    server = capped
    name = server.unique("chunked")
    raw = big_body(server, name, CAP * 3)
    blobs = server.blob_files()
    wire = Wire(server.port)
    try:
        wire.send(head(server, "PUT", "/" + name, {"Transfer-Encoding": "chunked"}))
        for i in range(0, len(raw), 16384):
            piece = raw[i:i + 16384]
            if not wire.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n"):
                break
        else:
            wire.send(b"0\r\n\r\n")
        status, headers, body = wire.response()
        if status is not None:  # an answer is optional once the connection is cut, but must be the right one
            assert_json_error(status, headers, body, 413)
    finally:
        wire.close()
    assert_nothing_stored(server, name, blobs)


def test_p10_chunked_body_under_the_cap_is_accepted(capped):
    """The control for the test above: the same framing below the cap publishes."""
    server = capped
    name = server.unique("chunked-ok")
    raw = json.dumps(server.publish_body(name, "1.0.0")).encode()
    wire = Wire(server.port)
    try:
        wire.send(head(server, "PUT", "/" + name, {"Transfer-Encoding": "chunked"}))
        for i in range(0, len(raw), 1000):
            piece = raw[i:i + 1000]
            wire.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        wire.send(b"0\r\n\r\n")
        status, _, body = wire.response()
        assert status == 201, body
    finally:
        wire.close()
    assert list(server.packument(name)["versions"]) == ["1.0.0"]


def test_p10_content_length_smaller_than_the_body(capped):
    """A lying (short) Content-Length: the server reads that many bytes, which are not a whole JSON
    document → 400; the rest of the bytes must not be taken for a request that does anything."""
    server = capped
    name = server.unique("liar")
    raw = json.dumps(server.publish_body(name, "1.0.0")).encode()
    blobs = server.blob_files()
    wire = Wire(server.port)
    try:
        wire.send(head(server, "PUT", "/" + name, {"Content-Length": "64"}) + raw)
        status, headers, body = wire.response()
        assert_json_error(status, headers, body, 400)
        # whatever the leftover bytes provoke, it is not a success and not a server error
        second, _, _ = wire.response(timeout=3)
        assert second is None or 400 <= second < 500, second
    finally:
        wire.close()
    assert_nothing_stored(server, name, blobs)


def test_p10_content_length_larger_than_the_body_then_disconnect(capped):
    server = capped
    name = server.unique("short")
    raw = json.dumps(server.publish_body(name, "1.0.0")).encode()
    blobs = server.blob_files()
    wire = Wire(server.port)
    wire.send(head(server, "PUT", "/" + name, {"Content-Length": str(len(raw) + 1000)}) + raw)
    time.sleep(0.3)
    wire.close()
    time.sleep(0.3)
    assert_nothing_stored(server, name, blobs)


@pytest.mark.parametrize("framing", ["bad-chunk-size", "both-lengths", "negative-length", "huge-chunk-size"])
def test_p10_malformed_framing_is_not_a_500(capped, framing):
    server = capped
    name = server.unique("frame")
    raw = json.dumps(server.publish_body(name, "1.0.0")).encode()
    blobs = server.blob_files()
    extra, payload = {
        "bad-chunk-size": ({"Transfer-Encoding": "chunked"}, b"zz\r\n" + raw + b"\r\n0\r\n\r\n"),
        "both-lengths": ({"Transfer-Encoding": "chunked", "Content-Length": "5"}, b"5\r\n{\"a\":\r\n0\r\n\r\n"),
        "negative-length": ({"Content-Length": "-1"}, raw),
        "huge-chunk-size": ({"Transfer-Encoding": "chunked"}, b"fffffffffffffff\r\n" + raw[:100]),
    }[framing]
    wire = Wire(server.port)
    try:
        wire.send(head(server, "PUT", "/" + name, extra) + payload)
        status, _, body = wire.response(timeout=2)
        assert status is None or 400 <= status < 500, (status, body[:200])
    finally:
        wire.close()
    assert_nothing_stored(server, name, blobs)


# ---- R14: clients that disconnect mid-upload -------------------------------------------------------

def _group_fds(pgid: int) -> list[str]:
    """The open descriptors of every process in the server's process group, except the database's
    own files: those belong to the connection pool, which grows to its bound on demand."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            for fd in os.listdir(proc / "fd"):
                target = os.readlink(proc / "fd" / fd)
                if "ketch.sqlite3" not in target:
                    found.append(target)
        except (OSError, ValueError, IndexError):
            continue
    return found


def _cut_uploads(server, name: str, raw: bytes, count: int) -> None:
    for i in range(count):
        wire = Wire(server.port)
        cut = [len(raw) // 2, 10, len(raw) - 1][i % 3]
        wire.send(head(server, "PUT", "/" + name, {"Content-Length": str(len(raw))}) + raw[:cut])
        if i % 2:  # half of them end with a TCP reset instead of a FIN
            wire.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        wire.close()
    time.sleep(0.5)


def test_r14_disconnect_mid_upload_leaves_nothing_and_leaks_nothing(capped):
    server = capped
    name = server.unique("cut")
    raw = json.dumps(server.publish_body(name, "1.0.0", files={"p": os.urandom(20_000)})).encode()
    assert len(raw) < CAP
    blobs = server.blob_files()
    # a first batch warms the server's thread pools up; descriptors are counted around the later batches
    _cut_uploads(server, name, raw, 12)
    fds_before = _group_fds(server.proc.pid)
    _cut_uploads(server, name, raw, 30)
    _cut_uploads(server, name, raw, 30)
    fds_after = _group_fds(server.proc.pid)
    assert_nothing_stored(server, name, blobs)
    assert len(fds_after) <= len(fds_before) + 2, (
        f"descriptors grew from {len(fds_before)} to {len(fds_after)} over 60 cut uploads: "
        f"{sorted(set(fds_after) - set(fds_before))[:10]}")
    # the very same publish, sent whole, goes through: nothing was left locked or half-written
    with server.client() as c:
        resp = c.put("/" + name, content=raw, headers={"content-type": "application/json", **server.user.auth})
    assert resp.status_code == 201, resp.text
    doc = server.packument(name)
    assert server.integrity_of(server.download(doc["versions"]["1.0.0"]["dist"]["tarball"])) == \
        doc["versions"]["1.0.0"]["dist"]["integrity"]


def test_r14_disconnect_mid_download(capped):
    server = capped
    name = server.unique("dl")
    with server.client() as c:
        body = server.publish_body(name, "1.0.0", files={"p": os.urandom(60_000)})
        assert server.publish(c, server.user, body).status_code == 201
    path = f"/{name}/-/{name}-1.0.0.tgz"
    for _ in range(20):
        wire = Wire(server.port)
        wire.send(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        wire.sock.recv(100)
        wire.close()
    assert server.integrity_of(server.download(path)) == server.body_integrity(body)
