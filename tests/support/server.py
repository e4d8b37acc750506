"""A real ``python -m ketch serve`` subprocess on a free loopback port, for the tests that talk to a
running server (e2e, integrity, scale, web).

Each server runs in its own process group (so a hard kill takes its workers down with it), with an
environment free of the caller's ``KETCH_*`` variables, and logs to a file that failure messages quote.
Subclasses choose the ``serve`` options (:meth:`ServerProcess.serve_args`) and the environment
(:meth:`ServerProcess.server_env`).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
# Every request of the tests comes from 127.0.0.1; brute-force limits are not what they are about.
NO_RATE_LIMITS = {"KETCH_LOGIN_RATE_LIMIT": "1000000", "KETCH_SIGNUP_RATE_LIMIT": "1000000"}


def unique(prefix: str = "e2e") -> str:
    """A fresh lower-case name, valid as an npm user name, package name and scope."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def escaped(name: str) -> str:
    """npm's escapedName: only the scope slash is escaped, as lower-case %2f."""
    return name.replace("/", "%2f")


def short_name(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, limit: int = 12000, start: int = 0) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(start)
            data = fh.read()
    except FileNotFoundError:
        return "(no log file)"
    text = data.decode("utf-8", "replace")
    return text if len(text) <= limit else "…" + text[-limit:]


@dataclass
class User:
    """An account signed up over HTTP, with the token the sign-up answered."""

    name: str
    password: str
    token: str
    email: str = ""

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}


class ServerProcess:
    """One ``ketch serve`` process group; ``data_dir``, ``log_path``, ``port`` and ``proc`` are set
    by the subclass."""

    host = "127.0.0.1"
    start_timeout = 30.0
    poll_interval = 0.1

    data_dir: Path
    log_path: Path
    port: int
    proc: subprocess.Popen | None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``, without a trailing slash."""
        return f"http://{self.host}:{self.port}"

    def serve_args(self) -> list[str]:
        """``ketch serve`` options after ``--host``, ``--port`` and ``--data-dir``."""
        return []

    def server_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KETCH_")}
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        return env

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self, port: int | None = None):
        """Start on ``port`` or a free one (tried again on another port if that one is taken)."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        attempts = 1 if port else 3
        for attempt in range(attempts):
            self.port = port or free_port()
            start_offset = self.log_size()
            cmd = [sys.executable, "-m", "ketch", "serve", "--host", self.host, "--port", str(self.port),
                   "--data-dir", str(self.data_dir), *self.serve_args()]
            with open(self.log_path, "ab") as log:
                log.write(f"\n=== {' '.join(cmd)}\n".encode())
                log.flush()
                self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             cwd=self.data_dir.parent, env=self.server_env(), start_new_session=True)
            error = self._wait_ready()
            if error is None:
                return self
            self.kill()
            log_text = tail(self.log_path, start=start_offset)
            if attempt + 1 < attempts and re.search(r"address already in use|EADDRINUSE|Errno 98", log_text,
                                                    re.IGNORECASE):
                continue
            pytest.fail(f"ketch serve did not become ready: {error}\n--- server log ---\n{log_text}", pytrace=False)

    def _wait_ready(self) -> str | None:
        deadline = time.monotonic() + self.start_timeout
        last = "no answer"
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                code = self.proc.poll()
                if code is not None:
                    return f"process exited with status {code}"
                try:
                    resp = client.get(f"{self.base_url}/-/ping")
                    if resp.status_code == 200 and self.proc.poll() is None:
                        return None
                    last = f"GET /-/ping answered {resp.status_code}: {resp.text[:200]}"
                except httpx.HTTPError as exc:
                    last = f"GET /-/ping failed: {exc!r}"
                time.sleep(self.poll_interval)
        return f"timed out after {self.start_timeout:.0f}s ({last})"

    def stop(self) -> None:
        """SIGTERM, as an operator would; then SIGKILL whatever is left of the process group."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def kill(self) -> None:
        """kill -9 of the whole process group: the master and every worker, no cleanup at all."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None

    def alive(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            return False
        try:
            return httpx.get(f"{self.base_url}/-/ping", timeout=5, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    # -- the log -----------------------------------------------------------------------------------
    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_tail(self, limit: int = 6000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return text[-limit:]
