"""Graceful shutdown (issue 3, scale-out): SIGTERM to a real ``ketch serve`` while a publish is
still uploading.

The upload must be answered 201 and committed; from the moment shutdown begins new connections
are refused, and a request that arrives on a connection opened earlier gets either no answer at
all or a complete one that matches what was committed — never a half-written result. The process
exits by itself, promptly when nothing is in flight, and within ``--shutdown-timeout`` when a
client stalls mid-upload. Afterwards a restart on the same data finds everything acknowledged and
``ketch fsck`` is clean.

The slow client is a raw socket: it sends ``Expect: 100-continue`` and waits for the ``100
Continue`` (sent when the application starts reading the body), so the signal provably lands while
a worker is inside the request, not while the connection still waits in the listen backlog.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

import psutil
import pytest

from tests.integrity.conftest import KetchServer, User

EXIT_TIMEOUT = 20.0       # a drained server exits in about a second; this only bounds a hang
REFUSE_TIMEOUT = 10.0     # time for every worker to have stopped accepting after the signal


# ---- raw HTTP/1.1 ---------------------------------------------------------------------------

def _publish_head(server: KetchServer, user: User, name: str, length: int, *, expect: bool,
                  close: bool = True) -> bytes:
    lines = [f"PUT /{server.escaped(name)} HTTP/1.1", f"Host: 127.0.0.1:{server.port}",
             "Content-Type: application/json", "npm-command: publish", f"Authorization: Bearer {user.token}",
             f"Content-Length: {length}"]
    if expect:
        lines.append("Expect: 100-continue")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_head(sock: socket.socket, buf: bytes = b"") -> tuple[bytes, bytes]:
    """Read up to the end of one response head; (head, bytes after it). EOF → (b"", partial)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return b"", buf
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head, rest


def _read_response(sock: socket.socket, buf: bytes = b"") -> tuple[int, dict[str, str], bytes] | None:
    """One complete final response, or None if the server closed the connection without one.

    A response that starts but is cut short fails the test: that is the half-written result a
    shutdown must never produce.
    """
    while True:
        try:
            head, rest = _read_head(sock, buf)
        except (ConnectionResetError, BrokenPipeError):
            return None
        if not head:
            assert not rest, f"the connection closed in the middle of a response head: {rest[:200]!r}"
            return None
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)}
        if status == 100:
            buf = rest
            continue
        length = int(headers["content-length"])
        body = rest
        while len(body) < length:
            chunk = sock.recv(65536)
            assert chunk, f"response {status} cut short: {len(body)} of {length} body bytes"
            body += chunk
        assert len(body) == length, f"response {status} longer than its content-length"
        return status, headers, body


def _expect_continue(sock: socket.socket) -> None:
    head, rest = _read_head(sock)
    assert head.startswith(b"HTTP/1.1 100"), f"expected 100 Continue, got {head[:200]!r}"
    assert not rest


def _connection_refused(port: int) -> bool:
    """True when a new connection is not accepted: refused, or reset by the kernel because the
    listening socket closed while the connection was still waiting in its backlog."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except (ConnectionRefusedError, ConnectionResetError):
        return True


def _signal(server: KetchServer, target: str) -> None:
    if target == "leader":  # what `kill PID`, docker stop and most supervisors do
        os.kill(server.proc.pid, signal.SIGTERM)
    else:                   # systemd's default KillMode, or Ctrl-C in a terminal (SIGINT alike)
        os.killpg(server.proc.pid, signal.SIGTERM)


def _group_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in psutil.process_iter(["pid", "status"])
                 if p.info["status"] != psutil.STATUS_ZOMBIE and _pgid(p.info["pid"]) == pgid]
        if not alive:
            return True
        time.sleep(0.05)
    return False


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _wait_exit(server: KetchServer, timeout: float) -> tuple[int, float]:
    start = time.monotonic()
    try:
        code = server.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"ketch serve still running {timeout}s after SIGTERM\n{server.log_tail()}", pytrace=False)
    return code, time.monotonic() - start


def _versions(server: KetchServer, name: str) -> list[str]:
    doc = server.packument(name)
    return sorted(doc["versions"]) if doc else []


# ---- tests ----------------------------------------------------------------------------------

@pytest.mark.parametrize("workers,target", [(1, "leader"), (2, "leader"), (2, "group")],
                         ids=["1-worker", "2-workers", "2-workers-group-signal"])
def test_sigterm_finishes_an_upload_in_flight(server_factory, workers, target):
    server = server_factory(workers=workers)
    user = server.signup()
    name, keepalive_name = server.unique("sd"), server.unique("sd")
    body = server.publish_body(name, "1.0.0", files={"payload.bin": os.urandom(400_000)})
    raw = json.dumps(body).encode()
    half = len(raw) // 2

    # An idle keep-alive connection, opened before the signal, for a request that comes after it.
    keepalive = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    keepalive.sendall(f"GET /-/ping HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode())
    pong = _read_response(keepalive)
    assert pong and pong[0] == 200

    upload = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    upload.sendall(_publish_head(server, user, name, len(raw), expect=True))
    _expect_continue(upload)  # a worker is reading this request's body now
    upload.sendall(raw[:half])
    pgid = server.proc.pid
    _signal(server, target)
    signalled = time.monotonic()

    # Shutdown has begun: new connections are refused while the upload is still being waited for.
    while not _connection_refused(server.port):
        assert time.monotonic() - signalled < REFUSE_TIMEOUT, "still accepting connections after SIGTERM"
        time.sleep(0.05)
    assert server.proc.poll() is None, "the server exited with an upload in flight\n" + server.log_tail()

    # A publish on the connection opened before the signal: no answer, or a complete one.
    late = json.dumps(server.publish_body(keepalive_name, "1.0.0")).encode()
    try:
        keepalive.sendall(_publish_head(server, user, keepalive_name, len(late), expect=False, close=False) + late)
        keepalive_answer = _read_response(keepalive)
    except (BrokenPipeError, ConnectionResetError):
        keepalive_answer = None
    finally:
        keepalive.close()
    if keepalive_answer is not None:
        assert keepalive_answer[0] in (201, 503), keepalive_answer

    # The rest of the upload: acknowledged in full.
    upload.sendall(raw[half:])
    answer = _read_response(upload)
    upload.close()
    assert answer is not None, "the upload in flight got no answer\n" + server.log_tail()
    status, _, payload = answer
    assert status == 201, f"{status} {payload[:300]!r}\n{server.log_tail()}"
    assert json.loads(payload)["ok"] is True

    # A brand-new connection now: refused, so nothing can be half-done on its behalf.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()

    code, _ = _wait_exit(server, EXIT_TIMEOUT)
    assert code == 0, server.log_tail()
    assert _group_gone(pgid, 5), "worker processes outlived the server"
    log = server.log_tail(20000)
    assert "refused to gracefully stop" not in log, log
    assert f'"path":"/{server.escaped(name)}","status":201' in log, "access log not flushed at shutdown"

    # Restart on the same data: the upload is there, byte for byte; the late publish is all or nothing.
    server.proc = None
    server.start()
    doc = server.packument(name)
    assert doc and sorted(doc["versions"]) == ["1.0.0"] and doc["dist-tags"]["latest"] == "1.0.0"
    dist = doc["versions"]["1.0.0"]["dist"]
    assert dist["integrity"] == server.body_integrity(body)
    assert server.integrity_of(server.download(dist["tarball"])) == dist["integrity"]
    expected_late = ["1.0.0"] if keepalive_answer is not None and keepalive_answer[0] == 201 else []
    assert _versions(server, keepalive_name) == expected_late
    server.stop()
    result = server.fsck()
    assert result.returncode == 0, f"fsck after a graceful shutdown:\n{result.stdout}\n{result.stderr}"


def test_shutdown_timeout_bounds_a_stalled_upload(server_factory):
    """A client that stops sending mid-body cannot hold the server: after ``shutdown_timeout``
    seconds the busy worker is killed, the client gets no answer and nothing is committed."""
    server = server_factory(workers=1, env={"KETCH_SHUTDOWN_TIMEOUT": "2"})
    user = server.signup()
    name = server.unique("sd")
    raw = json.dumps(server.publish_body(name, "1.0.0")).encode()

    stalled = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    stalled.sendall(_publish_head(server, user, name, len(raw), expect=True))
    _expect_continue(stalled)
    stalled.sendall(raw[: len(raw) // 2])
    pgid = server.proc.pid
    _signal(server, "leader")

    code, waited = _wait_exit(server, EXIT_TIMEOUT)
    # It did wait for the upload (the grace period), and not much longer.
    assert 1.5 <= waited <= 2 + 8, f"exited after {waited:.1f}s with a 2s shutdown timeout"
    assert code == 0, server.log_tail()
    assert _group_gone(pgid, 5)
    assert "refused to gracefully stop" in server.log_tail(), server.log_tail()
    stalled.settimeout(5)
    assert _read_response(stalled) is None, "a stalled upload must not be answered"
    stalled.close()

    server.proc = None
    server.start()
    assert server.packument(name) is None
    server.stop()
    result = server.fsck()
    assert result.returncode == 0, f"fsck after a forced shutdown:\n{result.stdout}\n{result.stderr}"


def test_idle_server_exits_promptly(server_factory):
    """With nothing in flight (idle keep-alive connections do not count) SIGTERM is quick."""
    server = server_factory(workers=2)
    with server.client() as client:  # leaves a keep-alive connection open
        assert client.get("/-/ping").status_code == 200
        _signal(server, "leader")
        code, waited = _wait_exit(server, EXIT_TIMEOUT)
    assert code == 0 and waited < 5, f"exit {code} after {waited:.1f}s\n{server.log_tail()}"
