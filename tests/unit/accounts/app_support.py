"""An in-process registry for the accounts tests: the real app behind Starlette's TestClient over a
fresh SQLite data dir, plus ``call`` for requests that need a chosen client IP address."""

from __future__ import annotations

import base64
import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pyotp
from starlette.testclient import TestClient

from ketch.app import create_app
from ketch.config import Settings
from ketch.db.migrate import upgrade


def unique(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Account:
    name: str
    password: str
    email: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}

    @property
    def basic(self) -> dict[str, str]:
        pair = base64.b64encode(f"{self.name}:{self.password}".encode()).decode()
        return {"authorization": f"Basic {pair}"}


@dataclass
class Response:
    status_code: int
    headers: dict[str, str]
    content: bytes

    def json(self) -> Any:
        return orjson.loads(self.content)


class App:
    def __init__(self, client: TestClient, settings: Settings):
        self.client = client
        self.settings = settings

    def signup(self, prefix: str = "u", password: str | None = None) -> Account:
        name = unique(prefix)
        password = password or "pw-" + uuid.uuid4().hex
        email = f"{name}@example.test"
        resp = self.client.put(f"/-/user/org.couchdb.user:{name}",
                               json={"name": name, "password": password, "email": email})
        assert resp.status_code == 201, resp.text
        return Account(name, password, email, resp.json()["token"])

    def login(self, name: str, password: str, otp: str | None = None, ip: str | None = None) -> Response:
        headers = {"npm-otp": otp} if otp else {}
        return self.call("PUT", f"/-/user/org.couchdb.user:{name}", {"name": name, "password": password},
                         headers, ip=ip)

    def enable_2fa(self, account: Account, mode: str = "auth-and-writes") -> tuple[pyotp.TOTP, list[str]]:
        started = self.client.post("/-/npm/v1/user", headers=account.auth,
                                   json={"tfa": {"mode": mode, "password": account.password}})
        assert started.status_code == 200, started.text
        url = started.json()["tfa"]
        assert url.startswith("otpauth://totp/"), url
        totp = pyotp.TOTP(pyotp.parse_uri(url).secret)
        done = self.client.post("/-/npm/v1/user", headers=account.auth, json={"tfa": [totp.now()]})
        assert done.status_code == 200, done.text
        return totp, done.json()["tfa"]

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
             ip: str | None = "203.0.113.7") -> Response:
        """One request straight into the ASGI app with ``ip`` as the client address."""
        raw = orjson.dumps(body) if body is not None else b""
        query = b""
        if "?" in path:
            path, q = path.split("?", 1)
            query = q.encode()
        hdrs = {"host": "testserver", "content-length": str(len(raw)), "user-agent": "unit-test",
                **({"content-type": "application/json"} if body is not None else {}), **(headers or {})}
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query,
                 "root_path": "", "headers": [(k.lower().encode(), v.encode()) for k, v in hdrs.items()],
                 "client": (ip, 50000) if ip else None, "server": ("testserver", 80), "state": {}}
        messages = [{"type": "http.request", "body": raw, "more_body": False}]
        sent: list[dict] = []

        async def receive():
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)

        self.client.portal.call(self.client.app, scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        return Response(start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]},
                        b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))

    def run(self, coro_fn, *args):
        """``await coro_fn(ctx, *args)`` on the app's event loop (direct database access)."""
        return self.client.portal.call(coro_fn, self.ctx, *args)

    @property
    def ctx(self):
        return self.client.app.state.ketch  # Observability and FastPath pass attributes through


@contextlib.contextmanager
def cheap_password_hashing() -> Iterator[None]:
    """Minimal argon2 parameters: these tests check behaviour, not hash strength. Verification
    reads the parameters from each stored hash, so nothing else changes."""
    from argon2 import PasswordHasher

    from ketch.accounts import passwords

    saved = passwords._hasher, passwords._DUMMY
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    passwords._DUMMY = passwords._hasher.hash("ketch-dummy-password")
    try:
        yield
    finally:
        passwords._hasher, passwords._DUMMY = saved


@contextlib.contextmanager
def running(settings: Settings) -> Iterator[App]:
    """The app over ``settings`` (migrated first), started with its lifespan."""
    upgrade(settings.resolved_database_url)
    with cheap_password_hashing(), TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield App(client, settings)


def module_app(tmp_path_factory) -> contextlib.AbstractContextManager[App]:
    return running(Settings(data_dir=tmp_path_factory.mktemp("ketch-accounts"), access_log=False))
