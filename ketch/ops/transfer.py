"""Moving a registry's data: backup and restore of the embedded mode, and migration of an embedded
registry to PostgreSQL + S3 (or any other database/storage pair).

Consistency: the database is copied first, then the blobs. Blobs are written before the metadata
that refers to them and are never changed, so every version in the copied database finds its
tarball among the blobs copied afterwards. A migration commits the copied rows only once every
blob is in the target, so an interrupted run leaves an empty target database behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import shutil
import sqlite3
import tarfile
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy import Integer, func, insert, select, text

import ketch.models  # noqa: F401  (every table on Base.metadata)
from ketch.blobs import BlobStoreUnavailable, open_blob_store
from ketch.config import Settings
from ketch.db import Database
from ketch.db.base import Base
from ketch.db.migrate import upgrade
from ketch.registry.fsck import run_fsck

FORMAT = "ketch-backup-1"
BATCH = 500


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=console, transient=False)


def _sqlite_path(settings: Settings) -> Path:
    url = settings.resolved_database_url
    if not url.startswith("sqlite") or ":///" not in url:
        raise SystemExit("backup and restore work on the embedded SQLite database; "
                         "use your PostgreSQL tools (pg_dump) and your object store's tools for scaled-out setups")
    return Path(url.split(":///", 1)[1])


async def backup(settings: Settings, output: Path, console: Console) -> dict:
    """Write a tar archive with a consistent snapshot of the database and every tarball blob."""
    db_path = _sqlite_path(settings)
    if not db_path.exists():
        raise SystemExit(f"no database at {db_path}")
    blobs = open_blob_store(settings)
    with tempfile.TemporaryDirectory() as tmp:
        snapshot = Path(tmp) / "ketch.sqlite3"
        source = sqlite3.connect(db_path)
        target = sqlite3.connect(snapshot)
        with target:
            source.backup(target)  # SQLite's online backup: a consistent copy while the server runs
        source.close()
        target.close()
        keys = [k async for k in blobs.keys()]
        tmp_out = output.with_name(output.name + ".partial")
        with tarfile.open(tmp_out, "w") as tar, _progress(console) as progress:
            tar.add(snapshot, arcname="ketch.sqlite3")
            task = progress.add_task("backing up tarballs", total=len(keys))
            for key in keys:
                data = await blobs.get(key)
                _add_bytes(tar, f"blobs/{key}", data)
                progress.advance(task)
            manifest = {"format": FORMAT, "created": time.time(), "blobs": len(keys)}
            _add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
        tmp_out.replace(output)
    return manifest


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))


async def restore(settings: Settings, archive: Path, console: Console, force: bool = False) -> list[str]:
    """Restore an archive made by :func:`backup` into an empty data dir, then fsck it."""
    db_path = _sqlite_path(settings)
    if db_path.exists() and not force:
        raise SystemExit(f"{db_path} already exists; restore into an empty data dir or pass --force")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    blobs = open_blob_store(settings)
    with tarfile.open(archive, "r") as tar:
        members = {m.name: m for m in tar.getmembers()}
        manifest = json.loads(tar.extractfile(members["manifest.json"]).read())
        if manifest.get("format") != FORMAT:
            raise SystemExit(f"{archive} is not a Ketch backup")
        for suffix in ("", "-wal", "-shm", ".changes"):
            Path(str(db_path) + suffix).unlink(missing_ok=True)
        with open(db_path, "wb") as fh:
            shutil.copyfileobj(tar.extractfile(members["ketch.sqlite3"]), fh)
        blob_members = [m for name, m in members.items() if name.startswith("blobs/") and m.isfile()]
        with _progress(console) as progress:
            task = progress.add_task("restoring tarballs", total=len(blob_members))
            for member in blob_members:
                key = member.name[len("blobs/"):]
                if ".." in key.split("/"):
                    raise SystemExit(f"unsafe path in archive: {member.name}")
                await blobs.put(key, tar.extractfile(member).read())
                progress.advance(task)
    await asyncio.to_thread(upgrade, settings.resolved_database_url)
    return await run_fsck(settings, console)


async def migrate_storage(source: Settings, target: Settings, console: Console, *,
                          verify_only: bool = False) -> list[str]:
    """Copy every row and every blob from ``source`` to ``target`` (whose database must be empty),
    then verify the target; returns the problems found (empty when the copy is faithful).

    The rows are inserted in one target transaction that commits only after every blob has been
    copied, so a run that fails half-way leaves the target database empty and can simply be run
    again (re-putting content-addressed blobs is harmless). ``verify_only`` skips the copy and
    checks an earlier migration again.
    """
    if source.resolved_database_url == target.resolved_database_url:
        raise SystemExit("the target database is the source database; give a different --to-database-url")
    await asyncio.to_thread(upgrade, source.resolved_database_url)
    await asyncio.to_thread(upgrade, target.resolved_database_url)
    src_db, dst_db = Database(source.resolved_database_url), Database(target.resolved_database_url)
    src_blobs, dst_blobs = open_blob_store(source), open_blob_store(target)
    tables = list(Base.metadata.sorted_tables)
    try:
        if not verify_only:
            await _copy(src_db, dst_db, src_blobs, dst_blobs, tables, console)
        problems = await _verify(src_db, dst_db, src_blobs, dst_blobs, tables, console)
    finally:
        await src_db.dispose()
        await dst_db.dispose()
    console.print("verifying the target (every tarball against its integrity, every packument rebuilt)…")
    problems += await run_fsck(target, console)
    return problems


async def _count(conn, table) -> int:
    return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


async def _copy(src_db: Database, dst_db: Database, src_blobs, dst_blobs, tables, console: Console) -> None:
    async with src_db.engine.connect() as src, dst_db.engine.connect() as dst:
        occupied = [(t.name, n) for t in tables if (n := await _count(dst, t))]
        if occupied:
            listed = ", ".join(f"{name}: {n} rows" for name, n in occupied[:3])
            raise SystemExit(
                f"the target database is not empty ({listed}{', …' if len(occupied) > 3 else ''}). "
                "migrate-storage copies into a fresh, empty database only; create one (or drop this one) "
                "and run it again. To check a finished migration again, add --verify-only.")
        counts = {t.name: await _count(src, t) for t in tables}
        with _progress(console) as progress:
            for table in tables:
                task = progress.add_task(f"copying {table.name}", total=counts[table.name])
                result = await src.stream(select(table))
                async for chunk in result.partitions(BATCH):
                    await dst.execute(insert(table), [dict(row._mapping) for row in chunk])
                    progress.advance(task, len(chunk))
        if dst.dialect.name == "postgresql":
            # Rows came with their ids: move each serial counter past them (ids, the feed's seq …).
            for table in tables:
                keys = list(table.primary_key.columns)
                if len(keys) == 1 and isinstance(keys[0].type, Integer) and not keys[0].foreign_keys:
                    column = keys[0].name
                    await dst.execute(text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column}'), "
                        f"COALESCE((SELECT MAX({column}) FROM {table.name}), 0) + 1, false)"))
        # Listed after the rows were read: every version copied above finds its blob among these.
        keys = [k async for k in src_blobs.keys()]
        with _progress(console) as progress:
            task = progress.add_task("copying tarballs", total=len(keys))
            sem = asyncio.Semaphore(8)

            async def copy(key: str) -> None:
                async with sem:
                    await dst_blobs.put(key, await src_blobs.get(key))
                    progress.advance(task)

            try:
                await asyncio.gather(*(copy(k) for k in keys))
            except BlobStoreUnavailable as e:
                raise SystemExit(f"copying tarballs failed: {e}. The target database was left empty "
                                 "(tarballs already copied are harmless); run migrate-storage again.") from None
        await dst.commit()  # only now do the rows appear; a failure above rolls them all back


async def _verify(src_db: Database, dst_db: Database, src_blobs, dst_blobs, tables, console: Console) -> list[str]:
    """Row counts table by table, and every source blob read back from the target and hashed."""
    problems: list[str] = []
    async with src_db.engine.connect() as src, dst_db.engine.connect() as dst:
        for table in tables:
            a, b = await _count(src, table), await _count(dst, table)
            if a != b:
                problems.append(f"table {table.name}: {a} rows in the source, {b} in the target")
    keys = [k async for k in src_blobs.keys()]
    with _progress(console) as progress:
        task = progress.add_task("verifying tarballs", total=len(keys))
        sem = asyncio.Semaphore(8)

        async def check(key: str) -> None:
            async with sem:
                try:
                    data = await dst_blobs.get(key)
                except KeyError:
                    problems.append(f"blob {key}: missing in the target")
                else:
                    if not _matches_key(key, data):
                        where = "" if _matches_key(key, await src_blobs.get(key)) else " (and in the source)"
                        problems.append(f"blob {key}: content does not match its SHA-512 key in the target{where}")
                progress.advance(task)

        await asyncio.gather(*(check(k) for k in keys))
    return sorted(problems)


def _matches_key(key: str, data: bytes) -> bool:
    """Blob keys end in the SHA-512 of their bytes (ketch.blobs.blob_key); other keys pass."""
    digest = key.rsplit("/", 1)[-1]
    if not key.startswith("sha512/") or len(digest) != 128:
        return True
    return hashlib.sha512(data).hexdigest() == digest
