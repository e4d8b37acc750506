"""Pages behind emailed links: address verification, and password reset (request → email → link →
new-password form).

The link's secret is in the query string (left out of the access log). The reset page shows the
form without spending the link; only a successful POST spends it. Every page answers with
``Referrer-Policy: no-referrer`` and ``Cache-Control: no-store`` and loads nothing from elsewhere,
so the secret cannot leak through a Referer header or a cache (W11).
"""

from __future__ import annotations

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ketch.accounts import audit, links, passwords, profile, throttle
from ketch.accounts.auth import client_ip, origin
from ketch.accounts.models import User
from ketch.accounts.pages import csrf_ok, field, form, render
from ketch.context import ctx
from ketch.http.errors import ApiError

MAX_RESET_ACCOUNTS = 5
SENT = "If an account matches, we have sent it an email with a link to choose a new password. The link works for one hour."
SESSION_EXPIRED = "Your session expired; please submit the form again."


async def verify_email(request: Request) -> Response:
    raw = request.query_params.get("token", "")
    try:
        async with ctx(request).db.write() as session:
            token, user = await links.consume(session, raw, "verify")
            user.email_verified = True
            await audit.record(session, "email:verified", actor=user, origin=origin(request),
                               details={"email": token.email})
    except ApiError as e:
        return render(request, "accounts_verify_email.html", e.status, error=e.error)
    return render(request, "accounts_verify_email.html", address=token.email, username=user.name)


async def forgot_password(request: Request) -> Response:
    page = "accounts_forgot_password.html"
    if request.method == "GET":
        return render(request, page)
    data = await form(request)
    if not csrf_ok(request, data):
        return render(request, page, 403, error=SESSION_EXPIRED)
    who = field(data, "account").strip()
    if not who or len(who) > 320:
        return render(request, page, 400, error="Enter your user name or email address.")
    c = ctx(request)
    try:
        await throttle.mail(c.db, "reset", who, client_ip(request))
    except ApiError as e:
        return render(request, page, e.status, {"retry-after": e.headers.get("retry-after", "60")}, error=e.error)
    column = User.email if "@" in who else User.name
    async with c.db.write() as session:
        users = list((await session.execute(
            select(User).where(column == who, User.deleted.is_(None)).order_by(User.id).limit(MAX_RESET_ACCOUNTS)
        )).scalars())
        sent = [(user, await links.issue(session, user, "reset")) for user in users if user.email]
    for user, raw in sent:
        links.send_reset(request, user, raw)
    return render(request, page, sent=SENT)


async def reset_password(request: Request) -> Response:
    page = "accounts_reset_password.html"
    c = ctx(request)
    if request.method == "GET":
        raw = request.query_params.get("token", "")
        async with c.db.read() as session:
            found = await links.peek(session, raw, "reset")
        if found is None:
            return render(request, page, 400, error=links.INVALID, dead=True)
        return render(request, page, token=raw, username=found[1].name)
    data = await form(request)
    raw = field(data, "token")
    if not csrf_ok(request, data):
        return render(request, page, 403, error=SESSION_EXPIRED, token=raw)
    password, again = field(data, "password"), field(data, "confirm")
    async with c.db.read() as session:
        found = await links.peek(session, raw, "reset")
    if found is None:
        return render(request, page, 400, error=links.INVALID, dead=True)
    name = found[1].name
    problem = passwords.password_problem(password, name)
    if problem is None and password != again:
        problem = "The two passwords are not the same."
    if problem:
        return render(request, page, 400, error=problem, token=raw, username=name)
    new_hash = await passwords.hash_password(password)
    try:
        async with c.db.write() as session:
            _, user = await links.consume(session, raw, "reset")
            await profile.set_password(session, user, new_hash, keep_token=None)
            await audit.record(session, "password:reset", actor=user, origin=origin(request))
    except ApiError as e:
        return render(request, page, e.status, error=e.error, dead=True)
    c.caches.get("auth", {}).clear()
    links.notify(request, user, "Your password was reset")
    return render(request, page, done=True, username=user.name)


routes = [
    Route("/-/web/verify-email", verify_email, methods=["GET"]),
    Route("/-/web/forgot-password", forgot_password, methods=["GET", "POST"]),
    Route("/-/web/reset-password", reset_password, methods=["GET", "POST"]),
]
