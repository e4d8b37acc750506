"""Organisation rules: creating orgs (which claims the @scope), members and roles, teams, and the
packages each team may read or write.

Roles: an **owner** manages everything, including other owners and billing; an **admin** manages
members (except owners), teams and package access; a **developer** reads and writes what their
teams are granted. Every org has a `developers` team that every member belongs to, and that gets
read-write on each new package published into the org's scope, or transferred to the org.

An org owns the packages of its scope and the packages transferred to it (``org_packages``).
"""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ketch.accounts import audit
from ketch.accounts.models import User
from ketch.accounts.services import Identity, username_problem
from ketch.db.base import utcnow
from ketch.http.errors import BadRequest, Conflict, Forbidden, NotFound
from ketch.orgs.models import PERMISSIONS, ROLES, Org, OrgMember, OrgPackage, Team, TeamMember, TeamPackage

DEVELOPERS = "developers"
MAX_TEAMS = 1000
MAX_MEMBERS = 10_000


async def get_org(session: AsyncSession, name: str) -> Org | None:
    return (await session.execute(select(Org).where(Org.name == name))).scalar_one_or_none()


async def role_of(session: AsyncSession, org_id: int, user_id: int) -> str | None:
    row = await session.execute(
        select(OrgMember.role).where(OrgMember.org_id == org_id, OrgMember.user_id == user_id))
    return row.scalar_one_or_none()


async def visible_org(session: AsyncSession, name: str, ident: Identity | None) -> tuple[Org, str]:
    """The org and the caller's role; 404 for outsiders, whether or not the org exists."""
    org = await get_org(session, name)
    role = await role_of(session, org.id, ident.user_id) if org and ident else None
    if org is None or role is None:
        raise NotFound()
    return org, role


async def managed_org(session: AsyncSession, name: str, ident: Identity) -> tuple[Org, str]:
    """The org, when the caller is one of its owners or admins (403 for developers, 404 outside)."""
    org, role = await visible_org(session, name, ident)
    if role not in ("owner", "admin"):
        raise Forbidden(f"Only owners and admins of @{name} can do that.")
    return org, role


async def _user(session: AsyncSession, name: object) -> User:
    if not isinstance(name, str) or not name:
        raise BadRequest("A user name is required.")
    user = (await session.execute(select(User).where(User.name == name.lstrip("@")))).scalar_one_or_none()
    if user is None or user.deleted is not None:
        raise NotFound(f"No such user: {name}")
    return user


# -- orgs ------------------------------------------------------------------------------------

async def create_org(session: AsyncSession, name: str, owner: User | Identity, *,
                     origin: audit.Origin = audit.NO_ORIGIN) -> Org:
    problem = username_problem(name)
    if problem:
        raise BadRequest(problem.replace("username", "organisation name"))
    owner_id = owner.user_id if isinstance(owner, Identity) else owner.id
    taken = await session.execute(select(User.id).where(User.name == name))
    if taken.first() is not None or await get_org(session, name) is not None:
        raise Conflict(f"The scope @{name} is already taken.")
    now = utcnow()
    org = Org(name=name, created=now)
    session.add(org)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict(f"The scope @{name} is already taken.") from None
    session.add(OrgMember(org_id=org.id, user_id=owner_id, role="owner", created=now))
    team = Team(org_id=org.id, name=DEVELOPERS, description="Every member of the organisation", created=now)
    session.add(team)
    await session.flush()
    session.add(TeamMember(team_id=team.id, user_id=owner_id))
    await audit.record(session, "org:create", actor=owner, origin=origin, org=name)
    return org


async def delete_org(session: AsyncSession, org_name: str, ident: Identity, confirm: str, *,
                     origin: audit.Origin = audit.NO_ORIGIN) -> None:
    """Delete an org that owns no packages (owners only). Its scope becomes free again."""
    from ketch.registry.models import Package

    org, role = await visible_org(session, org_name, ident)
    if role != "owner":
        raise Forbidden(f"Only owners of @{org.name} can delete it.")
    if confirm.strip().lstrip("@") != org.name:
        raise BadRequest(f"Type {org.name} to confirm that the organization should be deleted.")
    owned = select(OrgPackage.package_id).where(OrgPackage.org_id == org.id)
    names = list((await session.execute(select(Package.name).where(
        (Package.scope == org.name) | Package.id.in_(owned)).order_by(Package.name).limit(6))).scalars())
    if names:
        shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
        raise Conflict(f"@{org.name} still owns packages ({shown}), even unpublished ones keep their names. "
                       "An organization that owns packages cannot be deleted.")
    await session.delete(org)
    await audit.record(session, "org:delete", actor=ident, origin=origin, org=org.name)


async def orgs_of(session: AsyncSession, user_id: int) -> list[tuple[str, str]]:
    """(org name, role) of each org the user belongs to, by name."""
    rows = await session.execute(select(Org.name, OrgMember.role).join(OrgMember, OrgMember.org_id == Org.id)
                                 .where(OrgMember.user_id == user_id).order_by(Org.name))
    return [(n, r) for n, r in rows.all()]


async def team_sizes(session: AsyncSession, team_ids: list[int]) -> dict[int, int]:
    if not team_ids:
        return {}
    rows = await session.execute(select(TeamMember.team_id, func.count()).where(TeamMember.team_id.in_(team_ids))
                                 .group_by(TeamMember.team_id))
    return dict(rows.all())


async def members(session: AsyncSession, org_id: int) -> dict[str, str]:
    rows = await session.execute(select(User.name, OrgMember.role).join(User, User.id == OrgMember.user_id)
                                 .where(OrgMember.org_id == org_id).order_by(User.name))
    return dict(rows.all())


async def set_member(session: AsyncSession, org_name: str, ident: Identity, username: object, role: object, *,
                     origin: audit.Origin = audit.NO_ORIGIN) -> tuple[Org, int, str]:
    role = role or "developer"
    if role not in ROLES:
        raise BadRequest(f"Role must be one of {', '.join(ROLES)}.")
    org, my_role = await managed_org(session, org_name, ident)
    user = await _user(session, username)
    current = await role_of(session, org.id, user.id)
    if my_role != "owner" and ("owner" in (role, current)):
        raise Forbidden("Only owners can add, change or remove owners.")
    if current == "owner" and role != "owner" and await _owner_count(session, org.id) <= 1:
        raise Conflict("An organisation must keep at least one owner.")
    if current is None:
        await add_member(session, org, user.id, role)
    else:
        member = await session.get(OrgMember, (org.id, user.id))
        member.role = role
    await session.flush()
    await audit.record(session, "org:member:set", actor=ident, origin=origin, org=org.name, subject_user_id=user.id,
                       details={"user": user.name, "role": role, "previous": current})
    size = (await session.execute(select(func.count()).select_from(OrgMember)
                                  .where(OrgMember.org_id == org.id))).scalar_one()
    return org, size, role


async def add_member(session: AsyncSession, org: Org, user_id: int, role: str) -> None:
    """Make a user who is not a member yet one, with ``role``, in the developers team."""
    count = await session.execute(select(func.count()).select_from(OrgMember).where(OrgMember.org_id == org.id))
    if count.scalar_one() >= MAX_MEMBERS:
        raise Forbidden(f"An organisation may have at most {MAX_MEMBERS} members.")
    session.add(OrgMember(org_id=org.id, user_id=user_id, role=role, created=utcnow()))
    developers = await _team(session, org, DEVELOPERS)
    session.add(TeamMember(team_id=developers.id, user_id=user_id))


async def _owner_count(session: AsyncSession, org_id: int) -> int:
    return (await session.execute(select(func.count()).select_from(OrgMember).where(
        OrgMember.org_id == org_id, OrgMember.role == "owner"))).scalar_one()


async def remove_member(session: AsyncSession, org_name: str, ident: Identity, username: object, *,
                        origin: audit.Origin = audit.NO_ORIGIN) -> None:
    org, my_role = await managed_org(session, org_name, ident)
    user = await _user(session, username)
    current = await role_of(session, org.id, user.id)
    if current is None:
        raise NotFound(f"{user.name} is not a member of @{org.name}.")
    if current == "owner":
        if my_role != "owner":
            raise Forbidden("Only owners can remove owners.")
        if await _owner_count(session, org.id) <= 1:
            raise Conflict("An organisation must keep at least one owner.")
    team_ids = select(Team.id).where(Team.org_id == org.id)
    await session.execute(delete(TeamMember).where(TeamMember.user_id == user.id, TeamMember.team_id.in_(team_ids)))
    await session.execute(delete(OrgMember).where(OrgMember.org_id == org.id, OrgMember.user_id == user.id))
    await audit.record(session, "org:member:remove", actor=ident, origin=origin, org=org.name,
                       subject_user_id=user.id, details={"user": user.name})


# -- teams ------------------------------------------------------------------------------------

async def _team(session: AsyncSession, org: Org, name: str) -> Team:
    team = (await session.execute(select(Team).where(Team.org_id == org.id, Team.name == name))).scalar_one_or_none()
    if team is None:
        raise NotFound(f"No team {org.name}:{name}.")
    return team


async def teams(session: AsyncSession, org_id: int) -> list[Team]:
    return list((await session.execute(select(Team).where(Team.org_id == org_id).order_by(Team.name))).scalars())


async def create_team(session: AsyncSession, org_name: str, ident: Identity, name: object,
                      description: object = None, *, origin: audit.Origin = audit.NO_ORIGIN) -> Team:
    org, _ = await managed_org(session, org_name, ident)
    if not isinstance(name, str) or username_problem(name):
        raise BadRequest("Team names use lower-case letters, digits, '.', '_' and '-'.")
    if description is not None and (not isinstance(description, str) or len(description) > 500):
        raise BadRequest("A team description is a string of at most 500 characters.")
    if len(await teams(session, org.id)) >= MAX_TEAMS:
        raise Forbidden(f"An organisation may have at most {MAX_TEAMS} teams.")
    team = Team(org_id=org.id, name=name, description=description, created=utcnow())
    session.add(team)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict(f"Team {org.name}:{name} already exists.") from None
    await audit.record(session, "team:create", actor=ident, origin=origin, org=org.name, details={"team": name})
    return team


async def destroy_team(session: AsyncSession, org_name: str, ident: Identity, name: str, *,
                       origin: audit.Origin = audit.NO_ORIGIN) -> None:
    org, _ = await managed_org(session, org_name, ident)
    if name == DEVELOPERS:
        raise BadRequest("The developers team cannot be removed.")
    team = await _team(session, org, name)
    await session.delete(team)
    await audit.record(session, "team:destroy", actor=ident, origin=origin, org=org.name, details={"team": name})


async def team_members(session: AsyncSession, org_name: str, ident: Identity, name: str) -> list[str]:
    org, _ = await visible_org(session, org_name, ident)
    team = await _team(session, org, name)
    rows = await session.execute(select(User.name).join(TeamMember, TeamMember.user_id == User.id)
                                 .where(TeamMember.team_id == team.id).order_by(User.name))
    return [n for (n,) in rows.all()]


async def add_team_member(session: AsyncSession, org_name: str, ident: Identity, name: str, username: object, *,
                          origin: audit.Origin = audit.NO_ORIGIN) -> None:
    org, _ = await managed_org(session, org_name, ident)
    team = await _team(session, org, name)
    user = await _user(session, username)
    if await role_of(session, org.id, user.id) is None:
        raise BadRequest(f"{user.name} must be a member of @{org.name} before joining one of its teams.")
    if await session.get(TeamMember, (team.id, user.id)) is None:
        session.add(TeamMember(team_id=team.id, user_id=user.id))
    await audit.record(session, "team:member:add", actor=ident, origin=origin, org=org.name, subject_user_id=user.id,
                       details={"team": name, "user": user.name})


async def remove_team_member(session: AsyncSession, org_name: str, ident: Identity, name: str, username: object, *,
                             origin: audit.Origin = audit.NO_ORIGIN) -> None:
    org, _ = await managed_org(session, org_name, ident)
    team = await _team(session, org, name)
    user = await _user(session, username)
    member = await session.get(TeamMember, (team.id, user.id))
    if member is None:
        raise NotFound(f"{user.name} is not in team {org.name}:{name}.")
    await session.delete(member)
    await audit.record(session, "team:member:remove", actor=ident, origin=origin, org=org.name,
                       subject_user_id=user.id, details={"team": name, "user": user.name})


# -- package grants -------------------------------------------------------------------------

async def grant(session: AsyncSession, org_name: str, ident: Identity, team_name: str, package, permission: object, *,
                origin: audit.Origin = audit.NO_ORIGIN) -> None:
    """``package`` is a registry Package row the org owns (in its scope, or transferred to it)."""
    if permission not in PERMISSIONS:
        raise BadRequest('Permission must be "read-only" or "read-write".')
    org, _ = await managed_org(session, org_name, ident)
    if not await owns_package(session, org, package):
        raise BadRequest(f"Only packages of @{org.name} (in its scope or transferred to it) can be granted "
                         "to its teams.")
    team = await _team(session, org, team_name)
    row = await session.get(TeamPackage, (team.id, package.id))
    if row is None:
        session.add(TeamPackage(team_id=team.id, package_id=package.id, permission=permission))
    else:
        row.permission = permission
    await audit.record(session, "access:grant", actor=ident, origin=origin, org=org.name, package=package.name,
                       details={"team": team_name, "permission": permission})


async def revoke(session: AsyncSession, org_name: str, ident: Identity, team_name: str, package, *,
                 origin: audit.Origin = audit.NO_ORIGIN) -> None:
    org, _ = await managed_org(session, org_name, ident)
    team = await _team(session, org, team_name)
    row = await session.get(TeamPackage, (team.id, package.id))
    if row is None:
        raise NotFound(f"Team {org.name}:{team_name} has no access to {package.name}.")
    await session.delete(row)
    await audit.record(session, "access:revoke", actor=ident, origin=origin, org=org.name, package=package.name,
                       details={"team": team_name})


async def grant_new_package(session: AsyncSession, org: Org, package_id: int) -> None:
    """A package just published into the org's scope: the developers team may read and write it."""
    developers = await _team(session, org, DEVELOPERS)
    session.add(TeamPackage(team_id=developers.id, package_id=package_id, permission="read-write"))


async def package_org(session: AsyncSession, package_id: int) -> Org | None:
    """The org a package was transferred to, if any."""
    return (await session.execute(select(Org).join(OrgPackage, OrgPackage.org_id == Org.id)
                                  .where(OrgPackage.package_id == package_id))).scalar_one_or_none()


async def owns_package(session: AsyncSession, org: Org, package) -> bool:
    """Whether ``package`` (a registry Package row) belongs to ``org``: transferred to it, or in its
    scope and not transferred elsewhere."""
    owner = await package_org(session, package.id)
    return owner.id == org.id if owner is not None else package.scope == org.name


async def transferred_package_ids(session: AsyncSession, org_id: int) -> list[int]:
    return list((await session.execute(select(OrgPackage.package_id).where(OrgPackage.org_id == org_id))).scalars())


async def adopt_package(session: AsyncSession, org: Org, package_id: int) -> None:
    """Record that ``org`` now owns a package: teams of the org it belonged to before lose their
    grants, and the developers team may read and write it."""
    row = await session.get(OrgPackage, package_id)
    if row is None:
        session.add(OrgPackage(package_id=package_id, org_id=org.id))
    else:
        row.org_id = org.id
    own_teams = select(Team.id).where(Team.org_id == org.id)
    await session.execute(delete(TeamPackage).where(TeamPackage.package_id == package_id,
                                                    TeamPackage.team_id.not_in(own_teams)))
    developers = await _team(session, org, DEVELOPERS)
    if await session.get(TeamPackage, (developers.id, package_id)) is None:
        session.add(TeamPackage(team_id=developers.id, package_id=package_id, permission="read-write"))
    await session.flush()


async def team_packages(session: AsyncSession, org_name: str, ident: Identity, team_name: str) -> dict[str, str]:
    from ketch.registry.models import Package

    org, _ = await visible_org(session, org_name, ident)
    team = await _team(session, org, team_name)
    rows = await session.execute(select(Package.name, TeamPackage.permission)
                                 .join(TeamPackage, TeamPackage.package_id == Package.id)
                                 .where(TeamPackage.team_id == team.id, Package.unpublished.is_(None))
                                 .order_by(Package.name))
    return {n: ("write" if p == "read-write" else "read") for n, p in rows.all()}


async def user_grants(session: AsyncSession, user_id: int) -> dict[int, str]:
    """package id → best permission ("read-only"/"read-write") the user gets through teams."""
    rows = await session.execute(select(TeamPackage.package_id, TeamPackage.permission)
                                 .join(TeamMember, TeamMember.team_id == TeamPackage.team_id)
                                 .where(TeamMember.user_id == user_id))
    best: dict[int, str] = {}
    for package_id, permission in rows.all():
        if best.get(package_id) != "read-write":
            best[package_id] = permission
    return best


async def package_grant(session: AsyncSession, package_id: int, user_id: int) -> str | None:
    rows = await session.execute(select(TeamPackage.permission)
                                 .join(TeamMember, TeamMember.team_id == TeamPackage.team_id)
                                 .where(TeamMember.user_id == user_id, TeamPackage.package_id == package_id))
    perms = {p for (p,) in rows.all()}
    return "read-write" if "read-write" in perms else ("read-only" if perms else None)


async def package_team_users(session: AsyncSession, package_id: int) -> dict[str, str]:
    """user name → best team permission on the package (for `npm access list collaborators`)."""
    rows = await session.execute(select(User.name, TeamPackage.permission)
                                 .join(TeamMember, TeamMember.user_id == User.id)
                                 .join(TeamPackage, TeamPackage.team_id == TeamMember.team_id)
                                 .where(TeamPackage.package_id == package_id))
    best: dict[str, str] = {}
    for name, permission in rows.all():
        if best.get(name) != "read-write":
            best[name] = permission
    return best



# -- leaving -----------------------------------------------------------------------------------

async def sole_owner_of(session: AsyncSession, user_id: int) -> list[str]:
    """The orgs whose only owner the user is (they must hand them over before leaving Ketch)."""
    mine = select(OrgMember.org_id).where(OrgMember.user_id == user_id, OrgMember.role == "owner")
    rows = await session.execute(
        select(Org.name).join(OrgMember, OrgMember.org_id == Org.id)
        .where(Org.id.in_(mine), OrgMember.role == "owner").group_by(Org.id, Org.name)
        .having(func.count() == 1).order_by(Org.name))
    return list(rows.scalars())


async def leave_all(session: AsyncSession, user_id: int) -> None:
    """Remove a user who is leaving Ketch from every org and team."""
    await session.execute(delete(TeamMember).where(TeamMember.user_id == user_id))
    await session.execute(delete(OrgMember).where(OrgMember.user_id == user_id))
