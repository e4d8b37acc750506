"""Account email transport (ketch.accounts.email): SMTP delivery, the no-SMTP log fallback, and
which base URL emailed links may use (W10)."""

from __future__ import annotations

import asyncio
import email
import logging
import socket
import threading
from email import policy

import pytest
from starlette.requests import Request

from ketch.accounts import email as mail
from ketch.config import Settings
from ketch.context import Context


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Sink:
    def __init__(self):
        self.messages = []
        self.event = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, envelope.rcpt_tos,
                              email.message_from_bytes(envelope.content, policy=policy.default)))
        self.event.set()
        return "250 OK"


@pytest.fixture
def smtp():
    from aiosmtpd.controller import Controller

    sink = _Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield sink, controller.port
    controller.stop()


def test_delivers_through_the_configured_server(smtp):
    sink, port = smtp
    settings = Settings(smtp_host="127.0.0.1", smtp_port=port, mail_from="Ketch <noreply@ketch.test>")
    link = "http://127.0.0.1:4873/-/web/verify-email?token=" + "A" * 43
    assert asyncio.run(mail.send_now(settings, "ada@example.test", "Verify", f"Open {link}\n"))
    sender, recipients, message = sink.messages[0]
    assert sender == "noreply@ketch.test" and recipients == ["ada@example.test"]
    assert message["Subject"] == "Verify" and message["Message-ID"]
    assert link in message.get_body().get_content(), "links must survive unwrapped"


def test_background_send(smtp):
    sink, port = smtp
    settings = Settings(smtp_host="127.0.0.1", smtp_port=port)

    async def go():
        mail.send(settings, "bob@example.test", "Hello", "Body\n")
        await asyncio.gather(*mail._pending)
    asyncio.run(go())
    assert sink.event.wait(10) and sink.messages[0][1] == ["bob@example.test"]


def test_unreachable_server_is_logged_not_raised(caplog):
    settings = Settings(smtp_host="127.0.0.1", smtp_port=_free_port())
    with caplog.at_level(logging.WARNING, logger="ketch.email"):
        assert asyncio.run(mail.send_now(settings, "x@example.test", "Subject", "Body\n")) is False
    assert "could not send" in caplog.text


def test_without_smtp_the_message_is_logged(caplog):
    with caplog.at_level(logging.WARNING, logger="ketch.email"):
        assert asyncio.run(mail.send_now(Settings(), "x@example.test", "Reset", "the link\n")) is False
    assert "x@example.test" in caplog.text and "the link" in caplog.text


def test_header_injection_is_refused():
    with pytest.raises(ValueError):
        mail.build(Settings(), "victim@example.test\r\nBcc: all@example.test", "Hi", "Body")


def _request(settings: Settings, host: str, scheme: str = "http") -> Request:
    class _App:
        class state:
            ketch = Context(settings=settings, db=None, blobs=None)

    scope = {"type": "http", "method": "POST", "path": "/-/web/forgot-password", "root_path": "", "scheme": scheme,
             "headers": [(b"host", host.encode())], "query_string": b"", "server": ("127.0.0.1", settings.port),
             "client": ("127.0.0.1", 1234), "app": _App}
    return Request(scope)


@pytest.mark.parametrize("host, expected", [
    ("127.0.0.1:4999", "http://127.0.0.1:4999"),
    ("localhost:4999", "http://localhost:4999"),
    ("evil.example", "http://127.0.0.1:4999"),
    ("evil.example:4999", "http://127.0.0.1:4999"),
    ("127.0.0.1:4999@evil.example", "http://127.0.0.1:4999"),
    ("", "http://127.0.0.1:4999"),
])
def test_w10_links_never_follow_a_foreign_host_header(host, expected):
    settings = Settings(host="127.0.0.1", port=4999)
    assert mail.link_base(_request(settings, host)) == expected


def test_public_url_wins():
    settings = Settings(host="0.0.0.0", port=4999, public_url="https://npm.example.com/registry/")
    assert mail.link_base(_request(settings, "evil.example")) == "https://npm.example.com/registry"
