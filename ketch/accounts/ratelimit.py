"""Fixed-window rate limits kept in the database, so every node counts the same attempts."""

from __future__ import annotations

import random
import time

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ketch.accounts.models import RateCounter
from ketch.http.errors import ApiError


class RateLimited(ApiError):
    def __init__(self, retry_after: int, what: str):
        super().__init__(429, f"Too many {what}; try again in {retry_after} seconds.",
                         headers={"retry-after": str(retry_after)})


async def hit(db, key: str, limit: int, window: int, what: str = "attempts") -> None:
    """Count one attempt against ``key``; raise :class:`RateLimited` (429) once over ``limit`` per ``window`` s."""
    if limit <= 0:
        return
    now = int(time.time())
    start = now - now % window
    insert = sqlite_insert if db.is_sqlite else pg_insert
    stmt = insert(RateCounter).values(key=key[:200], window=start, count=1)
    stmt = stmt.on_conflict_do_update(index_elements=["key", "window"],
                                      set_={"count": RateCounter.count + 1}).returning(RateCounter.count)
    async with db.write() as session:
        count = (await session.execute(stmt)).scalar_one()
        if random.random() < 0.01:  # now and then, forget windows older than a day
            await session.execute(delete(RateCounter).where(RateCounter.window < now - 86400))
    if count > limit:
        raise RateLimited(start + window - now, what)


async def peek(db, key: str, window: int) -> int:
    """How many attempts ``key`` has made in the current window."""
    from sqlalchemy import select

    now = int(time.time())
    async with db.read() as session:
        row = await session.execute(select(RateCounter.count).where(
            RateCounter.key == key[:200], RateCounter.window == now - now % window))
        return row.scalar_one_or_none() or 0
