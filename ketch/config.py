"""Settings: command-line flags > KETCH_* environment variables > TOML config file > defaults.

The defaults are the embedded mode: SQLite and tarballs on the local disk under ``data_dir``.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

CONFIG_FILE_ENV = "KETCH_CONFIG"


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the file named by ``KETCH_CONFIG`` (set by ``--config``). Keys are the field names."""

    def get_field_value(self, field, field_name):  # pragma: no cover - unused, __call__ does the work
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get(CONFIG_FILE_ENV)
        if not path:
            return {}
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
        # Accept both a flat file and one with a [ketch] table.
        data = data.get("ketch", data)
        return {k.replace("-", "_"): v for k, v in data.items()}


class Uplink(BaseModel):
    """An upstream registry that names routed to it are fetched from and cached (see ketch.proxy)."""

    model_config = {"extra": "forbid", "frozen": True}

    url: str = Field(description="Base URL of the upstream registry, e.g. https://registry.example.com/.")
    token: str | None = Field(default=None, description="Bearer token sent upstream (never to clients).")
    timeout: float = Field(default=30.0, gt=0, description="Seconds one upstream request may take in all.")
    connect_timeout: float = Field(default=5.0, gt=0, description="Seconds to wait for a connection.")
    max_age: float = Field(default=120.0, ge=0, description="Seconds cached metadata is served without asking "
                           "upstream; after that it is revalidated (If-None-Match).")
    missing_max_age: float = Field(default=10.0, ge=0, description="Seconds an upstream 404 is remembered, so "
                                   "requests for a missing name do not each reach the uplink.")
    retries: int = Field(default=2, ge=0, le=10, description="Retries of a failed upstream request.")
    backoff: float = Field(default=0.2, ge=0, description="Seconds before the first retry; doubles each time.")
    max_fails: int = Field(default=3, ge=1, description="Failures in a row after which the uplink is "
                           "skipped (cache only) for fail_timeout seconds.")
    fail_timeout: float = Field(default=30.0, ge=0, description="Seconds an uplink that kept failing is skipped.")
    max_tarball_mb: int = Field(default=200, ge=1, description="Largest upstream tarball Ketch will cache.")
    tarball_origins: list[str] = Field(default_factory=list, description="Other origins (scheme://host[:port]) "
                                       "tarballs and redirects may come from, fetched without the token; by "
                                       "default only the uplink's own origin is ever contacted.")


class Route(BaseModel):
    """Which names go where: the first route whose pattern matches a name decides."""

    model_config = {"extra": "forbid", "frozen": True}

    packages: str = Field(description='Glob on the package name: "@corp/*", "*", "left-pad", "@types/*".')
    uplink: str | None = Field(default=None, description="Uplink name; unset means local only (never "
                               "looked up upstream: dependency-confusion protection).")
    publish_over_upstream: bool = Field(default=False, description="Allow publishing a version number "
                                        "that already exists upstream for this name.")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KETCH_", extra="ignore", frozen=True)

    data_dir: Path = Field(default=Path("./ketch-data"), description="Where the embedded database and tarballs live.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the metadata database; default sqlite under data_dir. "
        "postgresql://user@host/db selects PostgreSQL.",
    )
    storage_url: str | None = Field(
        default=None, description="Where tarballs are stored: file:///path (default data_dir/tarballs)."
    )
    s3_endpoint_url: str | None = Field(default=None, description="S3 endpoint (else AWS_ENDPOINT_URL).")
    s3_access_key_id: str | None = Field(default=None, description="S3 access key id (else AWS_ACCESS_KEY_ID).")
    s3_secret_access_key: str | None = Field(default=None, description="S3 secret (else AWS_SECRET_ACCESS_KEY).")
    s3_region: str | None = Field(default=None, description="S3 region (else AWS_REGION, then us-east-1).")
    s3_redirect: bool = Field(default=False, description="Answer tarball GETs with a redirect to a presigned URL.")
    s3_presign_expiry: int = Field(default=300, description="Seconds a presigned tarball URL stays valid.")
    blob_cache_mb: int = Field(default=64, description="Per-process memory for recently served public "
                               "tarballs of up to 1 MB, and as much again with S3 for every tarball (0 turns both off).")
    host: str = "127.0.0.1"
    port: int = 4873
    workers: int = 1
    public_url: str | None = Field(
        default=None,
        description="Base URL clients reach this registry at (e.g. https://npm.example.com/). "
        "When unset, tarball and login URLs follow the address each request used.",
    )
    allow_signup: bool = Field(default=True, description="Whether anyone may create an account.")
    max_body_size: int = Field(default=50 * 1024 * 1024, description="Largest publish request body in bytes.")
    max_json_body: int = Field(default=64 * 1024, description="Largest body for non-publish JSON requests.")
    web_login_ttl: int = Field(default=600, description="Seconds a pending `npm login` web session lives.")
    packument_cache_mb: int = Field(default=256, description="Per-process memory for cached packuments.")
    smtp_host: str | None = Field(default=None, description="SMTP server for account emails; unset = log them.")
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    mail_from: str = Field(default="Ketch registry <noreply@localhost>", description="From: of account emails.")
    login_rate_limit: int = Field(default=10, description="Failed logins per account, and per IP, per 5 minutes.")
    signup_rate_limit: int = Field(default=20, description="Sign-ups per IP per hour.")
    otp_rate_limit: int = Field(default=5, description="Wrong one-time passwords per account per 5 minutes.")
    count_downloads: bool = Field(default=True, description="Count tarball downloads for the downloads API, "
                                  "search popularity and the website (off: nothing is counted).")
    access_log: bool = Field(default=True, description="Write one JSON line per request to standard output.")
    log_level: str = "info"
    shutdown_timeout: int = Field(default=30, ge=1, le=3600, description=(
        "Seconds `serve` waits after SIGTERM/SIGINT for requests in flight (slow uploads included) "
        "before it kills the workers that are still busy."))

    uplinks: dict[str, Uplink] = Field(default_factory=dict, description="Upstream registries by name "
                                       "(none by default: Ketch serves only its own packages).")
    routes: list[Route] = Field(default_factory=list, description="Name patterns → uplink, first match "
                                "wins. With uplinks but no routes, every name goes to the only uplink.")
    proxy_max_body_mb: int = Field(default=50, ge=1, description="Largest upstream packument Ketch will parse.")

    @model_validator(mode="after")
    def _routes_name_uplinks(self):
        for route in self.routes:
            if route.uplink and route.uplink not in self.uplinks:
                raise ValueError(f"route {route.packages!r} names uplink {route.uplink!r}, "
                                 f"which is not configured (uplinks: {sorted(self.uplinks) or 'none'})")
        if self.uplinks and not self.routes and len(self.uplinks) > 1:
            raise ValueError("with more than one uplink, routes must say which names go to which")
        return self

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings):
        return (init_settings, env_settings, _TomlSource(settings_cls), file_secret_settings)

    # -- derived values ------------------------------------------------------------------
    @property
    def resolved_database_url(self) -> str:
        url = self.database_url or f"sqlite:///{(self.data_dir / 'ketch.sqlite3').resolve()}"
        return async_url(url)

    @property
    def resolved_storage_url(self) -> str:
        return self.storage_url or (self.data_dir / "tarballs").resolve().as_uri()


def async_url(url: str) -> str:
    """Map a plain SQLAlchemy/libpq URL onto the async driver Ketch uses."""
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///"):]
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://", "postgresql+psycopg://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    return url
