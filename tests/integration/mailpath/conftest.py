"""Fixtures for the mail-path tests: a shared Maildir, Dovecot over it, and probe-shaped messages.

Each test that needs a real server skips (with the reason) only when its binary is absent;
``.ci/run`` installs them (dovecot-imapd, postfix).
"""

from __future__ import annotations

import mailbox
import os
from collections.abc import Callable, Iterator
from email.message import EmailMessage

import pytest

from tests.integration.mailpath.mailkit import (
    Dovecot,
    MailStore,
    Postfix,
    binary,
    dovecot,
    mail_store,
    make_tls,
    postfix,
)


@pytest.fixture
def store() -> Iterator[MailStore]:
    with mail_store() as made:
        yield made


@pytest.fixture
def imap_server(store: MailStore) -> Iterator[Dovecot]:
    if binary("dovecot") is None:
        pytest.skip("dovecot is not installed (Debian: dovecot-imapd)")
    if os.geteuid() != 0:
        pytest.skip("runs Dovecot as root with its helpers as 'nobody' (CI runs as root)")
    with dovecot(store) as server:
        yield server


@pytest.fixture
def deliver(store: MailStore) -> Callable[[str], None]:
    """Drop a message with this Message-ID into the Maildir, as an MTA's local delivery would."""

    def put(message_id: str) -> None:
        message = EmailMessage()
        message["From"] = "probe@example.test"
        message["To"] = "postmaster@example.test"
        message["Subject"] = f"fortiauto probe {message_id[1:9]}"
        message["Message-ID"] = message_id
        message.set_content("fortiauto delivery check\n")
        mailbox.Maildir(store.maildir, create=False).add(message)

    return put


@pytest.fixture
def mta(store: MailStore) -> Iterator[Postfix]:
    if binary("postfix") is None:
        pytest.skip("postfix is not installed (Debian: postfix)")
    if os.geteuid() != 0:
        pytest.skip("a private Postfix instance is started as root (CI runs as root)")
    tls = make_tls(store.root / "mta-tls", "mx1.example.test")
    with postfix(store, tls) as server:
        yield server
