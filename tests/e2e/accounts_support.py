"""Fixtures for the account e2e tests: a registry of a module's own that sends its emails to a real
SMTP server. The mail sink, authenticator, terminal prompts and form filler live in
:mod:`tests.support.accounts` (the website tests use them too) and are re-exported here."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import conftest
import pytest

from tests.support.accounts import (Authenticator, Forms, MailSink, body_of, enable_2fa, expect_prompt,  # noqa: F401
                                    finish, link_in, submit)
from tests.support.registry import RegistryServer, own_registry

# --------------------------------------------------------------------------------------------------
# a registry that sends its emails to a MailSink (wrap these in a test module's fixtures)
# --------------------------------------------------------------------------------------------------


def mail_registry_for(sink: MailSink, base: Path) -> contextlib.AbstractContextManager[RegistryServer]:
    """A registry of its own whose emails go to ``sink``."""
    return own_registry(base, sink)


def watch(request, server: RegistryServer) -> None:
    """Give a module's own server the log check of the shared servers for the running test: a
    traceback it logs fails the test, and its log is attached to a failure report. Call it from an
    autouse fixture that depends on conftest's ``_server_log_marks``."""
    conftest._TEST_SERVERS.append(server)
    request.node._ketch_log_marks[id(server)] = server.log_size()


# -- fixtures for the modules that need a registry which sends real email ------------------------
# (import them into the test module: ``from accounts_support import mail_registry, mail_sink, …``)

@pytest.fixture(scope="module")
def mail_sink() -> Iterator[MailSink]:
    with MailSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def mail_registry(mail_sink, tmp_path_factory) -> Iterator[RegistryServer]:
    """The module's own registry, sending its emails to ``mail_sink``."""
    with mail_registry_for(mail_sink, tmp_path_factory.mktemp("ketch-mail")) as server:
        yield server


@pytest.fixture(autouse=True)
def watch_mail_registry(request, _server_log_marks) -> None:
    """Shows the mail registry's log with a failing test, as the shared registry's is shown."""
    if "mail_registry" in request.fixturenames:
        watch(request, request.getfixturevalue("mail_registry"))
