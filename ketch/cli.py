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
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            os.environ.pop(f"KETCH_{name.upper()}", None)
        elif isinstance(value, (dict, list)):
            import json

            os.environ[f"KETCH_{name.upper()}"] = json.dumps(value)
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
    shutdown_timeout: Annotated[Optional[int], typer.Option(
        min=1, help="Seconds to let requests in flight finish after SIGTERM before busy workers are killed "
             "(default 30).")] = None,
    config: ConfigFile = None,
) -> None:
    """Run the registry server (creates the data directory and upgrades the schema first).

    SIGTERM or SIGINT stops it gracefully: requests in flight, uploads included, finish first."""
    # Shutdown: new connections are refused at once; every request in flight completes; then each
    # worker's lifespan shutdown runs (pending background work, access-log flush, database pool).
    # Workers still busy after shutdown_timeout seconds are killed: their unfinished requests were
    # never acknowledged, and a publish commits in one transaction, so nothing half-written stays.
    settings = load_settings(config, host=host, port=port, workers=workers, data_dir=data_dir,
                             database_url=database_url, storage_url=storage_url, public_url=public_url,
                             allow_signup=signup, shutdown_timeout=shutdown_timeout)
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
    # Granian's graceful stop: the master closes its listening socket and SIGTERMs the workers; each
    # worker stops accepting, closes idle keep-alive connections, waits for its requests in flight
    # (a publish still uploading included) and only then runs the ASGI lifespan shutdown. Without
    # workers_kill_timeout it would wait forever for a client that stalls mid-upload.
    Granian("ketch.app:app_from_env", factory=True, address=settings.host, port=settings.port,
            interface=Interfaces.ASGI, workers=settings.workers, log_level=settings.log_level,
            respawn_failed_workers=True, backlog=2048,
            workers_kill_timeout=settings.shutdown_timeout).serve()


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
    _report(problems, "fsck")


@app.command()
def backup(
    output: Annotated[Path, typer.Argument(help="Archive to write, e.g. ketch-2026-11-25.tar.")],
    data_dir: DataDir = None, storage_url: StorageUrl = None, config: ConfigFile = None,
) -> None:
    """Write a consistent backup of an embedded registry (safe while it serves)."""
    import asyncio

    from ketch.ops.transfer import backup as run_backup

    settings = load_settings(config, data_dir=data_dir, storage_url=storage_url)
    manifest = asyncio.run(run_backup(settings, output, console))
    console.print(f"[green]backup written to {output} ({manifest['blobs']} tarballs)[/green]")


@app.command()
def restore(
    archive: Annotated[Path, typer.Argument(help="Archive written by `ketch backup`.")],
    data_dir: DataDir = None, storage_url: StorageUrl = None, config: ConfigFile = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing database.")] = False,
) -> None:
    """Restore a backup into an (empty) data dir, then check it with fsck."""
    import asyncio

    from ketch.ops.transfer import restore as run_restore

    settings = load_settings(config, data_dir=data_dir, storage_url=storage_url)
    problems = asyncio.run(run_restore(settings, archive, console, force=force))
    _report(problems, "restore")


@app.command("migrate-storage")
def migrate_storage(
    to_database_url: Annotated[str, typer.Option("--to-database-url", help="Target database (empty).")],
    to_storage_url: Annotated[str, typer.Option("--to-storage-url", help="Target tarball storage.")],
    data_dir: DataDir = None, database_url: DatabaseUrl = None, storage_url: StorageUrl = None,
    verify_only: Annotated[bool, typer.Option("--verify-only", help="Do not copy; check an earlier migration again.")] = False,
    config: ConfigFile = None,
) -> None:
    """Copy a registry (by default the embedded one) to another database and storage, then verify it.
    Stop the source server first. The target database must be empty; an interrupted run leaves it
    empty, so just run it again."""
    import asyncio

    from ketch.ops.transfer import migrate_storage as run_migrate

    source = load_settings(config, data_dir=data_dir, database_url=database_url, storage_url=storage_url)
    target = source.model_copy(update={"database_url": to_database_url, "storage_url": to_storage_url})
    problems = asyncio.run(run_migrate(source, target, console, verify_only=verify_only))
    _report(problems, "migration")


org_app = typer.Typer(help="Organisations.", no_args_is_help=True)
app.add_typer(org_app, name="org")


@org_app.command("create")
def org_create(
    name: Annotated[str, typer.Argument(help="Organisation name; it owns the @NAME scope.")],
    owner: Annotated[str, typer.Option("--owner", help="Existing user who becomes its first owner.")],
    data_dir: DataDir = None, database_url: DatabaseUrl = None, config: ConfigFile = None,
) -> None:
    """Create an organisation (operators' equivalent of the website form)."""
    import asyncio

    from ketch.accounts.services import get_user
    from ketch.db import Database
    from ketch.orgs.services import create_org

    settings = load_settings(config, data_dir=data_dir, database_url=database_url)
    prepare(settings)

    async def run() -> None:
        db = Database(settings.resolved_database_url)
        try:
            async with db.write() as session:
                user = await get_user(session, owner)
                if user is None or user.deleted is not None:
                    raise SystemExit(f"no such user: {owner}")
                await create_org(session, name, user)
        finally:
            await db.dispose()

    from ketch.http.errors import ApiError

    try:
        asyncio.run(run())
    except ApiError as e:
        console.print(f"[red]{e.error}[/red]")
        raise typer.Exit(1) from None
    console.print(f"[green]organisation @{name} created, owned by {owner}[/green]")


def _report(problems: list[str], what: str) -> None:
    if problems:
        for problem in problems:
            typer.echo(f"FAIL {problem}")
        console.print(f"[red]{what} finished with {len(problems)} problem(s)[/red]")
        raise typer.Exit(1)
    console.print(f"[green]{what} verified: no problems found[/green]")


def main() -> None:
    app()


@app.command()
def reindex(data_dir: DataDir = None, database_url: DatabaseUrl = None, config: ConfigFile = None) -> None:
    """Rebuild the search index and the download roll-ups and dependents from the database
    (safe while the registry serves)."""
    import asyncio

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ketch.db import Database
    from ketch.search import reindex as search_reindex
    from ketch.stats import reindex as stats_reindex

    settings = load_settings(config, data_dir=data_dir, database_url=database_url)
    prepare(settings)
    columns = (TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())

    async def run() -> int:
        db = Database(settings.resolved_database_url)
        try:
            with Progress(*columns, console=console) as bar:
                stats = bar.add_task("downloads, dependents", total=None)
                await stats_reindex.run(db, lambda done, total: bar.update(stats, completed=done, total=total))
                search = bar.add_task("search index", total=None)
                return await search_reindex.run(db, lambda done, total: bar.update(search, completed=done, total=total))
        finally:
            await db.dispose()

    count = asyncio.run(run())
    console.print(f"[green]reindexed {count} packages[/green]")
