"""Emailed invitations to join an organization (the website's members page; `npm org set` stays a
direct add, as on npm).

An owner or admin invites a user name or an email address with a role (only owners invite
owners). The invitee gets a link with a random secret (only its SHA-256 digest is stored), valid 7
days. Accepting needs the invited account to be logged in: the named user, or an account whose
email address is the invited one (e.g. just signed up with it). Accepting, revoking and inviting the
same person again delete the invitation.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ketch.accounts import audit
from ketch.accounts.models import User
from ketch.accounts.services import Identity, email_problem
from ketch.accounts.tokens import short_digest
from ketch.db.base import utcnow
from ketch.http.errors import ApiError, BadRequest, Conflict, Forbidden, NotFound
from ketch.orgs import services
from ketch.orgs.models import ROLES, Org, OrgInvitation

TTL = timedelta(days=7)
MAX_PENDING = 1000
INVALID = "This invitation is invalid, was revoked, was already used or has expired (invitations last 7 days)."


@dataclass(frozen=True)
class Sent:
    """A new invitation: the secret for the link, and where it goes."""

    secret: str
    address: str
    invitee: str  # the user name, or the email address


async def invite(session: AsyncSession, org_name: str, ident: Identity, who: str, role: str, *,
                 origin: audit.Origin = audit.NO_ORIGIN) -> Sent:
    if role not in ROLES:
        raise BadRequest(f"Role must be one of {', '.join(ROLES)}.")
    org, my_role = await services.managed_org(session, org_name, ident)
    if role == "owner" and my_role != "owner":
        raise Forbidden("Only owners can invite owners.")
    who = who.strip()
    if not who:
        raise BadRequest("Enter the user name or email address of the person to invite.")
    user_id = None
    if "@" in who.lstrip("@"):
        problem = email_problem(who)
        if problem:
            raise BadRequest(problem)
        address = invitee = who
    else:
        user = (await session.execute(select(User).where(User.name == who.lstrip("@")))).scalar_one_or_none()
        if user is None or user.deleted is not None:
            raise NotFound(f"No such user: {who}. To invite someone without an account, enter their email address.")
        if await services.role_of(session, org.id, user.id) is not None:
            raise Conflict(f"{user.name} is already a member of @{org.name}.")
        if not user.email:
            raise BadRequest(f"{user.name} has no email address to send an invitation to; add them as a member "
                             "directly instead.")
        user_id, address, invitee = user.id, user.email, user.name
    same = OrgInvitation.user_id == user_id if user_id else func.lower(OrgInvitation.email) == address.lower()
    await session.execute(delete(OrgInvitation).where(OrgInvitation.org_id == org.id, same))
    pending = await session.execute(select(func.count()).select_from(OrgInvitation)
                                    .where(OrgInvitation.org_id == org.id, OrgInvitation.expires > utcnow()))
    if pending.scalar_one() >= MAX_PENDING:
        raise Forbidden(f"An organization may have at most {MAX_PENDING} open invitations.")
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(OrgInvitation(org_id=org.id, user_id=user_id, email=None if user_id else address, role=role,
                              digest=short_digest(secret), invited_by=ident.user_id, created=now, expires=now + TTL))
    await session.flush()
    await audit.record(session, "org:invite", actor=ident, origin=origin, org=org.name, subject_user_id=user_id,
                       details={"invitee": invitee, "role": role})
    return Sent(secret, address, invitee)


async def pending(session: AsyncSession, org_id: int) -> list[dict]:
    """The open invitations of an org, oldest first: id, invitee, role, expires."""
    rows = await session.execute(
        select(OrgInvitation, User.name).outerjoin(User, User.id == OrgInvitation.user_id)
        .where(OrgInvitation.org_id == org_id, OrgInvitation.expires > utcnow()).order_by(OrgInvitation.id))
    return [{"id": inv.id, "invitee": name or inv.email, "role": inv.role, "expires": inv.expires}
            for inv, name in rows.all()]


async def revoke(session: AsyncSession, org_name: str, ident: Identity, invitation_id: str, *,
                 origin: audit.Origin = audit.NO_ORIGIN) -> None:
    org, my_role = await services.managed_org(session, org_name, ident)
    valid = invitation_id.isdigit() and len(invitation_id) < 10
    found = await session.get(OrgInvitation, int(invitation_id)) if valid else None
    if found is None or found.org_id != org.id:
        raise NotFound("That invitation was already accepted or revoked.")
    if found.role == "owner" and my_role != "owner":
        raise Forbidden("Only owners can revoke an invitation to become an owner.")
    await session.delete(found)
    await audit.record(session, "org:invite:revoke", actor=ident, origin=origin, org=org.name,
                       subject_user_id=found.user_id, details={"role": found.role})


async def find(session: AsyncSession, secret: str) -> tuple[OrgInvitation, Org, str | None] | None:
    """The live invitation of a link, its org and the inviter's name; None when it is not live."""
    if not isinstance(secret, str) or not 10 <= len(secret) <= 200:
        return None
    row = (await session.execute(
        select(OrgInvitation, Org, User.name).join(Org, Org.id == OrgInvitation.org_id)
        .outerjoin(User, User.id == OrgInvitation.invited_by)
        .where(OrgInvitation.digest == short_digest(secret)))).first()
    if row is None or row[0].expires <= utcnow():
        return None
    return row[0], row[1], row[2]


async def accept(session: AsyncSession, secret: str, ident: Identity, *,
                 origin: audit.Origin = audit.NO_ORIGIN) -> tuple[Org, str]:
    """Make the logged-in invitee a member; returns the org and the role."""
    found = await find(session, secret)
    if found is None:
        raise ApiError(400, INVALID)
    invitation, org, _ = found
    if invitation.user_id is not None:
        mine = invitation.user_id == ident.user_id
    else:
        address = (await session.get(User, ident.user_id)).email or ""
        mine = address.lower() == invitation.email.lower()
    if not mine:
        raise Forbidden("This invitation is for someone else: log in as the invited user, or sign up with the "
                        "email address it was sent to, then open the link again.")
    role = await services.role_of(session, org.id, ident.user_id)
    if role is None:
        role = invitation.role
        await services.add_member(session, org, ident.user_id, role)
    await session.execute(delete(OrgInvitation).where(
        OrgInvitation.org_id == org.id,
        or_(OrgInvitation.id == invitation.id, OrgInvitation.user_id == ident.user_id)))
    await audit.record(session, "org:invite:accept", actor=ident, origin=origin, org=org.name,
                       details={"role": role})
    return org, role
