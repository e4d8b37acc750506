"""Sending account emails through the configured SMTP server (``smtp_*`` settings).

Messages go out from a background task (smtplib in a worker thread), so a slow or failing mail
server never holds up a request, and a request's timing does not reveal whether a message was sent
(password reset must not tell which addresses have accounts). Without ``smtp_host`` the message is
written to the log instead, so the embedded default works with no mail server at all.

Links in emails use ``public_url`` when it is set. Otherwise they use the address the request came
to, but only when its Host header names this server's own listen address; anything else (a forged
``Host: evil.example``) falls back to that listen address, so a link can never point elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from starlette.requests import Request

from ketch.config import Settings
from ketch.context import base_url, ctx

log = logging.getLogger("ketch.email")
SMTP_TIMEOUT = 20
_pending: set[asyncio.Task] = set()


def build(settings: Settings, to: str, subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=_domain(settings.mail_from))
    msg["Auto-Submitted"] = "auto-generated"
    # Plain 7-bit text keeps links intact for every reader (quoted-printable would wrap them).
    msg.set_content(body, cte="7bit" if body.isascii() else "quoted-printable")
    return msg


def _domain(address: str) -> str:
    domain = address.rsplit("@", 1)[-1].strip(" >")
    return domain if domain and all(c.isalnum() or c in ".-" for c in domain) else "localhost"


def deliver(settings: Settings, msg: EmailMessage) -> None:
    """Send now (blocking); raises on failure."""
    if settings.smtp_ssl:
        server: smtplib.SMTP = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT,
                                                context=ssl.create_default_context())
    else:
        server = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT)
    with server:
        if settings.smtp_starttls and not settings.smtp_ssl:
            server.starttls(context=ssl.create_default_context())
        if settings.smtp_user:
            server.login(settings.smtp_user, settings.smtp_password or "")
        server.send_message(msg)


async def send_now(settings: Settings, to: str, subject: str, body: str) -> bool:
    msg = build(settings, to, subject, body)
    if not settings.smtp_host:
        log.warning("No SMTP server is configured (smtp_host), so this email was not sent:\n"
                    "To: %s\nSubject: %s\n\n%s", to, subject, body)
        return False
    try:
        await asyncio.to_thread(deliver, settings, msg)
        return True
    except (OSError, smtplib.SMTPException) as e:
        log.warning("could not send email %r to %s: %s", subject, to, e)
        return False


def send(settings: Settings, to: str | None, subject: str, body: str) -> None:
    """Queue a message; it is sent in the background."""
    if not to:
        return
    task = asyncio.get_running_loop().create_task(send_now(settings, to, subject, body))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


def link_base(request: Request) -> str:
    """Base URL for links in emails (see the module docstring)."""
    settings = ctx(request).settings
    if settings.public_url:
        return settings.public_url.rstrip("/")
    own = {f"{settings.host}:{settings.port}".lower()}
    if settings.host in ("127.0.0.1", "::1", "localhost"):
        own.add(f"localhost:{settings.port}")
    host = (request.headers.get("host") or "").lower()
    if host in own or f"[{settings.host}]:{settings.port}" == host:
        return base_url(request)
    listen = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"{request.url.scheme}://{listen}:{settings.port}{request.scope.get('root_path', '')}".rstrip("/")


def send_org_invitation(request: Request, to: str, org: str, role: str, inviter: str, link: str) -> None:
    """The invitation to join an organization (:mod:`ketch.orgs.invitations`)."""
    send(ctx(request).settings, to, f"{inviter} invited you to join @{org} on Ketch",
         f"Hello,\n\n{inviter} invited you to join the @{org} organization on Ketch as {role}.\n"
         f"Open this link within 7 days to accept (log in, or sign up with this email address, first):\n\n"
         f"{link}\n\nIf you do not want to join, ignore this message.\n")
