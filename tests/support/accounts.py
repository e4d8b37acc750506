"""Account helpers shared by the e2e and website tests: a real SMTP server (aiosmtpd) that keeps
what it receives, an authenticator app (pyotp), npm's terminal prompts through pexpect, and a
browser-like form filler for the account pages."""

from __future__ import annotations

import email
import re
import threading
import time
from email import policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Self
from urllib.parse import urljoin

import httpx
import pexpect
import pyotp

from tests.support.server import free_port

# --------------------------------------------------------------------------------------------------
# mail
# --------------------------------------------------------------------------------------------------


class MailSink:
    """A local SMTP server on a free loopback port; ``wait_for(to=…)`` returns a received message."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[EmailMessage] = []
        self._cond = threading.Condition()
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's hook name
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        with self._cond:
            self.messages.append(message)
            self._cond.notify_all()
        return "250 Message accepted for delivery"

    def __enter__(self) -> Self:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def config_file(self, directory: Path, **extra: Any) -> Path:
        """A ``ketch serve --config`` file pointing the registry at this server."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "ketch-smtp.toml"
        lines = ['smtp_host = "127.0.0.1"', f"smtp_port = {self.port}",
                 'mail_from = "Ketch test <registry@ketch.test>"']
        lines += [f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {str(v).lower()}" for k, v in extra.items()]
        path.write_text("\n".join(lines).replace("'", '"') + "\n")
        return path

    def wait_for(self, to: str, subject: str = "", timeout: float = 30.0, after: int = 0) -> EmailMessage:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for message in self.messages[after:]:
                    if to.lower() in str(message["To"]).lower() and subject.lower() in str(message["Subject"]).lower():
                        return message
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(str(m["To"]), str(m["Subject"])) for m in self.messages]
                    raise AssertionError(f"no email to {to} about {subject!r} within {timeout}s; got {seen}")
                self._cond.wait(left)

    def count(self) -> int:
        with self._cond:
            return len(self.messages)


def body_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def link_in(message: EmailMessage, path: str) -> str:
    found = re.search(r"https?://\S+" + re.escape(path) + r"\?token=[\w-]+", body_of(message))
    assert found, f"no {path} link in:\n{body_of(message)}"
    return found.group(0)


# --------------------------------------------------------------------------------------------------
# two-factor authentication
# --------------------------------------------------------------------------------------------------


class Authenticator:
    """What an authenticator app shows. Each ``code()`` is one the registry has not seen yet: it
    refuses a spent code (replay), so after one is used the next comes from the following 30 s step
    (accepted up to one step early), waiting for it when needed."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.totp = pyotp.TOTP(secret)
        self.last_step: int | None = None

    def code(self) -> str:
        now = int(time.time() // 30)
        step = now if self.last_step is None else max(now, self.last_step + 1)
        while step > int(time.time() // 30) + 1:
            time.sleep(0.5)
        self.last_step = step
        return self.totp.at(step * 30)

    def wrong_code(self) -> str:
        good = {self.totp.at(time.time() + d * 30) for d in (-1, 0, 1)}
        return next(c for c in ("000000", "111111", "222222", "333333") if c not in good)


def expect_prompt(child, prompt: str, answer: str, timeout: float = 60) -> str:
    child.expect(re.escape(prompt), timeout=timeout)
    seen = (child.before or "") + (child.after or "")
    child.sendline(answer)
    return seen


def finish(child, timeout: float = 90) -> tuple[int, str]:
    """Wait for a pexpect child (terminal or pipes) to end: (exit status, what it printed)."""
    child.expect(pexpect.EOF, timeout=timeout)
    output = child.before or ""
    if isinstance(child, pexpect.spawn):
        child.close()
        return child.exitstatus, output
    return child.wait(), output


def enable_2fa(npm, password: str, mode: str = "auth-and-writes") -> tuple[Authenticator, list[str], str]:
    """`npm profile enable-2fa <mode>` on a terminal, as a person does it: type the password, read
    the secret npm prints under the QR code into an authenticator, type its first code. Returns the
    authenticator, the recovery codes npm printed, and the whole transcript."""
    child = npm.spawn("profile", "enable-2fa", mode)
    transcript = expect_prompt(child, "npm password:", password)
    child.expect(r"Or enter code:\s+([A-Z2-7]+)", timeout=60)
    transcript += (child.before or "") + (child.after or "")
    app = Authenticator(child.match.group(1))
    transcript += expect_prompt(child, "And an OTP code from your authenticator:", app.code())
    status, rest = finish(child)
    transcript += rest
    assert status == 0, transcript
    assert "2FA successfully enabled" in transcript, transcript
    codes = re.findall(r"^\s*([0-9a-f]{64})\s*$", rest, re.MULTILINE)
    return app, codes, transcript


# --------------------------------------------------------------------------------------------------
# pages
# --------------------------------------------------------------------------------------------------


class Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._current: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = {"action": a.get("action", ""), "inputs": {}}
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None and a.get("name"):
            self._current["inputs"][a["name"]] = {"type": a.get("type", "text").lower(), "value": a.get("value", "")}

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def submit(browser: httpx.Client, page: httpx.Response, fields: dict[str, str], needs: str) -> httpx.Response:
    """Fill the page's form that has a ``needs`` field (hidden fields echoed) and POST it."""
    parser = Forms()
    parser.feed(page.text)
    forms = [f for f in parser.forms if needs in f["inputs"]]
    assert forms, f"no form with a {needs!r} field on {page.url}:\n{page.text[:2000]}"
    form = forms[0]
    assert "csrf" in form["inputs"], f"form without a csrf field: {form}"
    data = {k: v["value"] for k, v in form["inputs"].items() if v["type"] == "hidden"}
    data.update(fields)
    return browser.post(urljoin(str(page.url), form["action"] or str(page.url)), data=data)


def approve_web_login(login_url: str, username: str, password: str) -> httpx.Response:
    """What a person does in the browser: GET the login page, fill its form (echoing the hidden
    csrf field) and POST it back."""
    with httpx.Client(timeout=30.0, trust_env=False, follow_redirects=True) as browser:
        page = browser.get(login_url)
        assert page.status_code == 200, f"GET {login_url} answered {page.status_code}: {page.text[:500]}"
        return submit(browser, page, {"username": username, "password": password}, needs="password")
