"""The replication feed: one row per change to a package, read back in sequence order.

The registry writes a row from inside each write transaction (:func:`record`, called by
``ketch.registry.events``). Followers page through the rows with ``since``/``limit`` as they do
through CouchDB's ``_changes``; each sees only the packages it may read *now*, so a private
package leaves gaps in the sequence for outsiders, and appears once it is made public.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from ketch.accounts.services import Identity
from ketch.db import Database
from ketch.db.base import utcnow
from ketch.feed.models import Change
from ketch.registry.models import Package
from ketch.registry.services import can_read

log = logging.getLogger("ketch.feed")
MAX_LIMIT = 10_000
# Rows read per query, and at most how many hidden rows one request skips before it answers
# with what it has (its last_seq then tells the follower where to go on).
BATCH = 1000
SCAN_BUDGET = 50_000
_PENDING = "ketch.feed.pending"  # session.info: name → Change row added in this transaction


async def record(session: AsyncSession, name: str, kind: str, rev: str, *, deleted: bool) -> None:
    """Log a change to ``name`` in the caller's write transaction (one row per package and transaction).

    On PostgreSQL the row takes the transaction-scoped advisory lock ``feed`` first. Sequence
    numbers are handed out when rows are inserted, but transactions commit in their own order: if
    #8 could commit while #7 is still open, a follower reading then would move past 7 and never
    see it. Holding the lock from the insert to the commit makes commits happen in sequence
    order. Writers of different packages queue only for that short tail of their transaction.
    SQLite needs nothing: BEGIN IMMEDIATE already runs one writer at a time.
    """
    pending = session.info.setdefault(_PENDING, {})
    row = pending.get(name)
    if row is not None:  # rebuilt twice in one transaction (e.g. a transfer): keep the first kind
        row.rev, row.deleted = rev, deleted
        return
    if session.bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended('feed', 0))"))
    row = Change(name=name, rev=rev, kind=kind, deleted=deleted, at=utcnow())
    session.add(row)
    await session.flush()  # takes the sequence number now, under the lock
    pending[name] = row


async def last_seq(session: AsyncSession) -> int:
    return (await session.execute(select(func.coalesce(func.max(Change.seq), 0)))).scalar_one()


@dataclass
class Page:
    results: list[dict]
    last_seq: int


async def changes(session: AsyncSession, ident: Identity | None, *, since: int | None, limit: int,
                  descending: bool = False) -> Page:
    """Up to ``limit`` changes after ``since`` (before it when ``descending``; None: from the
    newest) that ``ident`` may read, and the sequence number to continue from."""
    results: list[dict] = []
    readable: dict[str, bool] = {}
    cursor = since
    scanned = 0
    while len(results) < limit and scanned < SCAN_BUDGET:
        query = select(Change, Package).outerjoin(Package, Package.name == Change.name).limit(BATCH)
        if descending:
            query = query.order_by(Change.seq.desc())
            if cursor is not None:
                query = query.where(Change.seq < cursor)
        else:
            query = query.order_by(Change.seq).where(Change.seq > (cursor or 0))
        rows = (await session.execute(query)).all()
        for change, package in rows:
            scanned += 1
            cursor = change.seq
            if change.name not in readable:
                readable[change.name] = package is not None and await can_read(session, package, ident)
            if readable[change.name]:
                results.append(_entry(change))
                if len(results) == limit:
                    break
        if len(rows) < BATCH:
            break
    return Page(results, cursor if cursor is not None else 0)


def _entry(change: Change) -> dict:
    entry = {"seq": change.seq, "id": change.name, "changes": [{"rev": change.rev}], "kind": change.kind}
    if change.deleted:
        entry["deleted"] = True
    return entry


class Watcher:
    """Wakes long-polling requests when the feed may have grown.

    Commits made by this process wake them at once (``Database.after_commit``); commits by other
    processes or machines are noticed by one query every ``interval`` seconds, shared by every
    waiting request and run only while some request waits.
    """

    def __init__(self, db: Database, interval: float = 0.5):
        self.db = db
        self.interval = interval
        self.latest = 0  # the highest sequence number seen by the shared query
        self.commits = 0  # package changes committed by this process
        self._grown = asyncio.Event()
        self._waiting = 0
        self._poller: asyncio.Task | None = None
        db.after_commit.append(self._committed)

    def _committed(self, _names) -> None:
        self.commits += 1
        self._wake()

    def _wake(self) -> None:
        event, self._grown = self._grown, asyncio.Event()
        event.set()

    async def wait(self, seen: int, timeout: float) -> None:
        """Return once the feed may hold rows after ``seen``, or after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        commits = self.commits
        self._waiting += 1
        if self._poller is None or self._poller.done():
            self._poller = loop.create_task(self._poll())
        try:
            while self.latest <= seen and self.commits == commits:
                left = deadline - loop.time()
                if left <= 0:
                    return
                try:
                    await asyncio.wait_for(self._grown.wait(), left)
                except TimeoutError:
                    return
        finally:
            self._waiting -= 1

    async def _poll(self) -> None:
        while self._waiting:
            await asyncio.sleep(self.interval)
            try:
                async with self.db.read() as session:
                    latest = await last_seq(session)
            except (SQLAlchemyError, OSError) as e:  # waiters then time out as if nothing changed
                log.warning("changes feed: cannot read the latest sequence number: %s", e)
                continue
            if latest > self.latest:
                self.latest = latest
                self._wake()
