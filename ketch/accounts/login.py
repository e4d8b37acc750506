"""Sign-up, and the password checks shared by every place that takes one: couch login, the web
login form, token creation, password change, 2FA changes and account deletion.

Each check is throttled (:mod:`ketch.accounts.throttle`), fails with the same status and body for
an unknown user and a wrong password (and costs the same argon2 time), and leaves a
``login:failed`` audit event.
"""

from __future__ import annotations

from starlette.requests import Request

from ketch.accounts import audit, links, second_factor, services, tfa, throttle
from ketch.accounts.auth import client_ip, origin
from ketch.accounts.models import User
from ketch.context import ctx
from ketch.http.errors import ApiError, Forbidden, Unauthorized

BAD_LOGIN = "Incorrect username or password."
BAD_PASSWORD = "Incorrect password."


async def check_password(request: Request, name: str, password: object, *, error: str = BAD_LOGIN) -> User:
    """The live user whose password this is; 401 (``www-authenticate: Basic``) or 429 otherwise."""
    c = ctx(request)
    name = name if isinstance(name, str) else ""
    await throttle.check_login(c.db, c.settings, name, client_ip(request))
    async with c.db.read() as session:
        user = await services.authenticate(session, name, password if isinstance(password, str) else "")
    if user is None:
        await failed(request, name)
        raise Unauthorized(error, scheme="Basic")
    return user


async def failed(request: Request, name: str, why: str = "password") -> None:
    """Record a failed login in the audit log (the named account sees it) and spend budget."""
    c = ctx(request)
    async with c.db.write() as session:
        known = await services.get_user(session, name) if name else None
        await audit.record(session, "login:failed", origin=origin(request),
                           subject_user_id=known.id if known is not None and known.deleted is None else None,
                           details={"name": name[:100], "reason": why})
    await throttle.login_failed(c.db, c.settings, name, client_ip(request))


async def second_step(request: Request, user: User, code: str | None = None) -> None:
    """At login: a two-factor account must also send a valid one-time password (``npm-otp``, or
    ``code`` from a form). A wrong code is a ``login:failed`` audit event."""
    if not tfa.active_mode(user):
        return
    code = code if code is not None else request.headers.get("npm-otp")
    try:
        await second_factor.check(ctx(request), user.id, code, None, origin(request))
    except ApiError as e:
        if code and e.status == 401:
            async with ctx(request).db.write() as session:
                await audit.record(session, "login:failed", origin=origin(request), subject_user_id=user.id,
                                   details={"name": user.name, "reason": "otp"})
        raise


async def create_account(request: Request, name: str, password: str, address: object, *,
                         token: bool) -> tuple[User, str | None]:
    """Sign up (throttled per IP), optionally with a login token, and email the verification link."""
    c = ctx(request)
    if not c.settings.allow_signup:
        raise Forbidden("Sign-up is disabled on this registry; ask an administrator for an account.")
    await throttle.signup(c.db, c.settings, client_ip(request))
    where = origin(request)
    raw = None
    async with c.db.write() as session:
        user = await services.create_user(session, name, password, address)
        if token:
            _, raw = await services.issue_token(session, user, kind="session", name="login", ip=where.ip)
        await audit.record(session, "signup", actor=user, origin=where)
        verify = await links.issue(session, user, "verify")
    links.send_verification(request, user, verify)
    return user, raw
