"""The `ketch` command: serve the registry and operate on its data."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from ketch.config import CONFIG_FILE_ENV, Settings

app = typer.Typer(help="Ketch: a package registry for npm, pnpm and yarn.", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)
db_app = typer.Typer(help="Database schema management.", no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console(stderr=True)

DataDir = Annotated[Optional[Path], typer.Option("--data-dir", help="Directory for the embedded database and tarballs.")]
DatabaseUrl = Annotated[Optional[str], typer.Option("--database-url", help="SQLAlchemy URL, e.g. postgresql://user@host/db.")]
StorageUrl = Annotated[Optional[str], typer.Option("--storage-url", help="Tarball storage, e.g. file:///srv/ketch/tarballs.")]
ConfigFile = Annotated[Optional[Path], typer.Option("--config", help="TOML config file (keys as in `KETCH_*`, lower-case).")]


def load_settings(config: Path | None = None, **overrides) -> Settings:
    if config is not None:
        if not config.is_file():
            raise typer.BadParameter(f"config file {config} does not exist", param_hint="--config")
        os.environ[CONFIG_FILE_ENV] = str(config.resolve())
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def export_settings(settings: Settings) -> None:
    """Hand the resolved settings to server worker processes through the environment."""
    for name, value in settings.model_dump().items():
        if value is None:
            os.environ.pop(f"KETCH_{name.upper()}", None)
        else:
            os.environ[f"KETCH_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)


def prepare(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    from ketch.db.migrate import upgrade

    upgrade(settings.resolved_database_url)


@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option(help="Address to listen on.")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Worker processes.")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    storage_url: StorageUrl = None,
    public_url: Annotated[Optional[str], typer.Option(help="Base URL clients use, if behind a proxy.")] = None,
    signup: Annotated[Optional[bool], typer.Option("--signup/--no-signup", help="Allow anyone to create an account.")] = None,
    config: ConfigFile = None,
) -> None:
    """Run the registry server (creates the data directory and upgrades the schema first)."""
    settings = load_settings(config, host=host, port=port, workers=workers, data_dir=data_dir,
                             database_url=database_url, storage_url=storage_url, public_url=public_url,
                             allow_signup=signup)
    settings = settings.model_copy(update={"data_dir": settings.data_dir.resolve()})
    # Worker processes' counters live here and are summed by /-/metrics; set before anything imports
    # prometheus_client, which picks its storage at import time.
    metrics_dir = settings.data_dir / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    import ketch.app  # noqa: F401  (fail here, once, rather than in a worker respawn loop)

    prepare(settings)
    export_settings(settings)
    from granian import Granian
    from granian.constants import Interfaces

    console.print(f"Ketch registry on http://{settings.host}:{settings.port}/ "
                  f"(data: {settings.data_dir}, workers: {settings.workers})")
    Granian("ketch.app:app_from_env", factory=True, address=settings.host, port=settings.port,
            interface=Interfaces.ASGI, workers=settings.workers, log_level=settings.log_level,
            respawn_failed_workers=True, backlog=2048).serve()


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = None, database_url: DatabaseUrl = None, config: ConfigFile = None) -> None:
    """Create or upgrade the database schema to the newest version."""
    settings = load_settings(config, data_dir=data_dir, database_url=database_url)
    prepare(settings)
    console.print("Database schema is up to date.")


@app.command()
def fsck(data_dir: DataDir = None, database_url: DatabaseUrl = None, storage_url: StorageUrl = None,
         config: ConfigFile = None) -> None:
    """Check the registry's invariants; exits non-zero naming each violation."""
    import asyncio

    from ketch.registry.fsck import run_fsck

    settings = load_settings(config, data_dir=data_dir, database_url=database_url, storage_url=storage_url)
    problems = asyncio.run(run_fsck(settings, console))
    if problems:
        for problem in problems:
            typer.echo(f"FAIL {problem}")
        console.print(f"[red]{len(problems)} problem(s) found[/red]")
        raise typer.Exit(1)
    console.print("[green]fsck: no problems found[/green]")


def main() -> None:
    app()
