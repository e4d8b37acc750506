"""A private PostgreSQL server for tests that must stop and start it (fault tests).

The machine's shared server on 127.0.0.1:5432 serves every other test, so it must never be
stopped; this one lives in a temp dir on a free port: ``initdb -A trust`` then ``pg_ctl start``.
Plain module (no pytest import) so any test directory can use it.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
from pathlib import Path


def _bin(name: str) -> str:
    for candidate in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True):
        return candidate
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivatePostgres:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.data = self.root / "data"
        self.sockets = self.root / "sock"
        self.port = free_port()
        self._user = None
        if os.geteuid() == 0:  # initdb refuses to run as root: use the postgres system user
            import pwd

            self._user = pwd.getpwnam("postgres")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        preexec = None
        if self._user is not None:
            uid, gid = self._user.pw_uid, self._user.pw_gid

            def preexec():  # noqa: E306
                os.setgid(gid)
                os.setuid(uid)
        subprocess.run(list(args), check=True, capture_output=True, preexec_fn=preexec, timeout=60)

    def init(self) -> PrivatePostgres:
        self.root.mkdir(parents=True, exist_ok=True)
        self.sockets.mkdir(exist_ok=True)
        if self._user is not None:
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
            os.chown(self.sockets, self._user.pw_uid, self._user.pw_gid)
        self._run(_bin("initdb"), "-A", "trust", "-U", "postgres", "-D", str(self.data))
        return self

    def start(self) -> None:
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.sockets} -c fsync=off"
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def cleanup(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres() -> PrivatePostgres:
    """Its files go under a fresh /tmp directory: pytest's tmp_path is private to root, and the
    server runs as the postgres user when the tests run as root. ``cleanup()`` removes it."""
    import tempfile

    pg = PrivatePostgres(Path(tempfile.mkdtemp(prefix="ketch-pg-"))).init()
    pg.start()
    return pg
