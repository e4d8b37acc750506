"""The audit log: every security-relevant event, with actor, IP, user agent and time.

Services call :func:`record` inside their own transaction, so an event exists exactly when the
change it describes was committed. Failed attempts (e.g. a wrong password) are recorded in a
transaction of their own by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ketch.accounts.models import AuditEvent
from ketch.db.base import utcnow

MAX_PAGE = 200


@dataclass(frozen=True)
class Origin:
    """Where a request came from; built by the HTTP layer (``ketch.accounts.auth.origin``)."""

    ip: str | None = None
    user_agent: str | None = None


NO_ORIGIN = Origin()


async def record(session: AsyncSession, action: str, *, actor=None, origin: Origin = NO_ORIGIN,
                 subject_user_id: int | None = None, package: str | None = None, org: str | None = None,
                 details: dict | None = None) -> AuditEvent:
    """``actor`` is an Identity or a User (anything with ``user_id``/``id`` and ``name``), or None."""
    actor_id = getattr(actor, "user_id", None) or getattr(actor, "id", None) if actor is not None else None
    event = AuditEvent(
        created=utcnow(), action=action, actor_id=actor_id, actor_name=getattr(actor, "name", None),
        subject_user_id=subject_user_id if subject_user_id is not None else actor_id, package=package, org=org,
        ip=origin.ip, user_agent=(origin.user_agent or "")[:300] or None,
        details=orjson.dumps(details).decode() if details else None,
    )
    session.add(event)
    return event


async def list_events(session: AsyncSession, *, user_id: int | None = None, package: str | None = None,
                      org: str | None = None, before: int | None = None, limit: int = 100) -> list[AuditEvent]:
    """Newest first. ``user_id`` matches events the user did or that were done to the user."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(max(1, min(limit, MAX_PAGE)))
    if user_id is not None:
        query = query.where(or_(AuditEvent.actor_id == user_id, AuditEvent.subject_user_id == user_id))
    if package is not None:
        query = query.where(AuditEvent.package == package)
    if org is not None:
        query = query.where(AuditEvent.org == org)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    return list((await session.execute(query)).scalars())


def event_json(event: AuditEvent) -> dict:
    return {
        "id": event.id, "time": event.created.isoformat().replace("+00:00", "Z"), "action": event.action,
        "actor": event.actor_name, "package": event.package, "org": event.org, "ip": event.ip,
        "userAgent": event.user_agent, "details": orjson.loads(event.details) if event.details else None,
    }
