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


@app.command()
def mirror(
    source: Annotated[str, typer.Argument(help="Base URL of the registry to copy from.")],
    names: Annotated[Optional[str], typer.Option("--names", help="Copy only these packages (comma-separated).")] = None,
    names_file: Annotated[Optional[Path], typer.Option("--names-file", help="Copy only the packages in this "
                                                       "file (one name a line).")] = None,
    token: Annotated[Optional[str], typer.Option("--token", help="Bearer token for the source (private packages).",
                                                 envvar="KETCH_MIRROR_TOKEN")] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Requests to the source at once.")] = 8,
    data_dir: DataDir = None, database_url: DatabaseUrl = None, storage_url: StorageUrl = None,
    config: ConfigFile = None,
) -> None:
    """Copy packages from another registry, pinned in the proxy cache: all of them by following its
    changes feed from where the last run stopped, or only the names given. Safe to interrupt."""
    import asyncio

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ketch.blobs import open_blob_store
    from ketch.db import Database
    from ketch.feed.mirror import Mirror

    wanted = [n.strip() for n in (names or "").split(",") if n.strip()]
    if names_file is not None:
        wanted += [line.strip() for line in names_file.read_text().splitlines()
                   if line.strip() and not line.lstrip().startswith("#")]
    settings = load_settings(config, data_dir=data_dir, database_url=database_url, storage_url=storage_url)
    prepare(settings)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())

    async def run():
        db = Database(settings.resolved_database_url)
        copier = None
        try:
            with Progress(*columns, console=console) as bar:
                task = bar.add_task("packages" if wanted or names_file else "changes", total=None)
                copier = Mirror(db, open_blob_store(settings), source, token=token, concurrency=concurrency,
                                progress=lambda done, total: bar.update(task, completed=done, total=total))
                return await (copier.copy_names(wanted) if wanted or names_file else copier.follow())
        finally:
            if copier is not None:
                await copier.close()
            await db.dispose()

    import httpx

    from ketch.feed.mirror import CopyFailed

    try:
        summary = asyncio.run(run())
    except (httpx.HTTPError, CopyFailed, ValueError) as e:
        console.print(f"[red]cannot read the changes feed of {source}: {e}[/red]")
        raise typer.Exit(1) from None
    console.print(f"copied {summary.packages} packages ({summary.versions} versions), {summary.tarballs} tarballs "
                  f"({_bytes(summary.bytes)}); removed {summary.deleted} deleted packages")
    if summary.failures:
        for name, reason in sorted(summary.failures.items()):
            typer.echo(f"FAIL {name}: {reason}")
        console.print(f"[red]{len(summary.failures)} package(s) could not be copied; run again to retry them[/red]")
        raise typer.Exit(1)


cache_app = typer.Typer(help="The proxy cache (packages fetched from uplinks).", no_args_is_help=True)
app.add_typer(cache_app, name="cache")


@cache_app.command("prune")
def cache_prune(
    max_size: Annotated[Optional[str], typer.Option("--max-size", help="Keep the unpinned cache under this "
                                                    "size, e.g. 10GB (units are powers of 1024).")] = None,
    max_age: Annotated[Optional[str], typer.Option("--max-age", help="Drop what was not used for this long, "
                                                   "e.g. 30d, 12h.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would be deleted.")] = False,
    data_dir: DataDir = None, database_url: DatabaseUrl = None, storage_url: StorageUrl = None,
    config: ConfigFile = None,
) -> None:
    """Delete cached upstream packuments and tarballs, least recently used first (mirrored, pinned
    copies are never touched). Safe while the registry serves: it fetches again what it needs."""
    import asyncio

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.table import Table

    from ketch.blobs import open_blob_store
    from ketch.db import Database
    from ketch.proxy import prune

    if max_size is None and max_age is None:
        raise typer.BadParameter("give --max-size, --max-age or both")
    try:
        size = prune.parse_size(max_size) if max_size is not None else None
        age = prune.parse_age(max_age) if max_age is not None else None
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    settings = load_settings(config, data_dir=data_dir, database_url=database_url, storage_url=storage_url)
    prepare(settings)

    async def run():
        db = Database(settings.resolved_database_url)
        try:
            found = await prune.plan(db, max_size=size, max_age=age)
            if dry_run or not found.drop:
                return found, 0
            with Progress(TextColumn("pruning"), BarColumn(), MofNCompleteColumn(), console=console) as bar:
                task = bar.add_task("", total=len(found.drop))
                blobs = await prune.apply(db, open_blob_store(settings), found.drop,
                                          lambda done: bar.update(task, completed=done))
            return found, blobs
        finally:
            await db.dispose()

    found, blobs = asyncio.run(run())
    if dry_run:
        table = Table("package", "file", "size", "last used")
        for item in found.drop[:50]:
            table.add_row(item.name, item.filename or "(packument)", _bytes(item.size),
                          f"{item.last_used:%Y-%m-%d %H:%M}")
        if len(found.drop) > 50:
            table.add_row(f"… and {len(found.drop) - 50} more", "", "", "")
        console.print(table)
    freed = sum(i.size for i in found.drop)
    verb = "would delete" if dry_run else "deleted"
    console.print(f"[green]{verb} {sum(i.filename is None for i in found.drop)} packuments and "
                  f"{sum(i.filename is not None for i in found.drop)} tarballs ({_bytes(freed)}"
                  + ("" if dry_run else f", {blobs} blobs no longer shared")
                  + f"); the unpinned cache {'would hold' if dry_run else 'holds'} {_bytes(found.kept_bytes)}[/green]")


def _bytes(count: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TB"
