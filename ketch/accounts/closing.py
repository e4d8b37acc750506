"""Closing an account, the same way from the website and from ``DELETE /-/npm/v1/user``.

It is refused while the user is the only maintainer of a live package or the only owner of an
organization (they must hand those over first). Otherwise the account becomes a tombstone
(:func:`ketch.accounts.profile.delete_account`), and its security keys, org and team
memberships and co-maintainerships go with it.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from ketch.accounts import profile
from ketch.accounts.models import User
from ketch.accounts.security_keys import SecurityKey
from ketch.http.errors import Conflict
from ketch.orgs import services as orgs
from ketch.registry import reads, transfer


async def blockers(session: AsyncSession, user_id: int) -> dict[str, list[str]]:
    return {"packages": await reads.sole_maintainer_of(session, user_id),
            "orgs": await orgs.sole_owner_of(session, user_id)}


async def close_account(session: AsyncSession, user: User) -> None:
    found = await blockers(session, user.id)
    if found["packages"] or found["orgs"]:
        what = [f"package {p}" for p in found["packages"]] + [f"organization {o}" for o in found["orgs"]]
        raise Conflict("Hand over what only you own first: " + ", ".join(what) + ".")
    await profile.delete_account(session, user)
    await session.execute(delete(SecurityKey).where(SecurityKey.user_id == user.id))
    await orgs.leave_all(session, user.id)
    await transfer.leave_packages(session, user.id)
