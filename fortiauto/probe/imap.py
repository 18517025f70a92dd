"""Did the probe's message reach the mailbox? Look for it over IMAP, then delete it.

Runs in the verify step, after the probe's DATA got its 250 (F17 not-delivered when the
message never shows up). Uses the standard library's ``imaplib`` on a thread of its own: one
session per check that logs in, selects the mailbox, polls ``UID SEARCH HEADER Message-ID``
(with ``NOOP`` so the server reports new mail) until the message is there or the timeout
runs out, then flags it ``\\Deleted`` and expunges that one message (``UID EXPUNGE`` where
the server has UIDPLUS, RFC 4315; plain ``EXPUNGE`` otherwise).

TLS always: ``imaps://`` is implicit TLS, ``imap://`` must offer STARTTLS (RFC 2595) or
the check gives up before sending any credential. Verification is on unless the site file
says ``verify_tls: false``. The password never reaches a log: imaplib's debug output is off
for our sessions, ``AUTHENTICATE PLAIN`` (RFC 4616) keeps it out of imaplib's command
history, and a server offering only ``LOGIN`` gets it with that history cleared after.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import re
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from fortiauto.site.models import ImapConfirm

__all__ = ["MailboxAnswer", "check_mailbox", "find_and_delete", "imap_tls_context"]

# One IMAP command (connect, login, search ...) never waits longer than this for the server.
COMMAND_TIMEOUT = 15.0
# The probe's Message-ID as probe/smtp.py writes it; anything else is not searched for
# (it goes into a quoted IMAP string, so quotes, backslashes and line breaks must not).
_SEARCHABLE_ID = re.compile(r"^<[A-Za-z0-9._+=@-]{1,200}>$")


@dataclass(frozen=True)
class MailboxAnswer:
    """``found``: True (there, and deleted), False (not there in time), None (cannot tell: ``detail``)."""

    found: bool | None
    detail: str
    deleted: bool = False


class _CannotTell(Exception):
    """The mailbox could not be asked; the text names why without any secret."""


def imap_tls_context(verify: bool | Path) -> ssl.SSLContext:
    """Verification with the system's CAs (True), a CA bundle (a path), or none (False)."""
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if verify is True:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=str(verify))


async def check_mailbox(spec: ImapConfirm, message_id: str, *, poll: float = 1.0) -> MailboxAnswer:
    """``find_and_delete`` on a thread of its own, awaited; cancelling it ends the wait at the next poll.

    Not the event loop's default executor: a check may wait a minute for mail, and that pool is
    small (cores + 4) and shared with name lookups, which other devices' probes need meanwhile.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[MailboxAnswer] = loop.create_future()
    stop = threading.Event()

    def settle(answer: MailboxAnswer | None, error: BaseException | None) -> None:
        if done.done():
            return  # cancelled meanwhile
        if error is not None:
            done.set_exception(error)
        else:
            assert answer is not None
            done.set_result(answer)

    def work() -> None:
        try:
            answer = find_and_delete(spec, message_id, poll=poll, stop=stop)
        except Exception as exc:  # handed to the awaiting task, which re-raises it
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, answer, None)

    threading.Thread(target=work, name="fortiauto-imap", daemon=True).start()
    try:
        return await done
    except asyncio.CancelledError:
        stop.set()
        raise


def find_and_delete(
    spec: ImapConfirm,
    message_id: str,
    *,
    poll: float = 1.0,
    stop: threading.Event | None = None,
) -> MailboxAnswer:
    """Blocking: wait up to ``spec.timeout`` for ``message_id`` in ``spec.mailbox``, then delete it.

    Meant for a worker thread; ``stop`` set by the caller ends the wait early (None: not found).
    """
    if not _SEARCHABLE_ID.match(message_id):
        return MailboxAnswer(None, "the probe's Message-ID is not one IMAP can search for")
    stop = stop or threading.Event()
    deadline = time.monotonic() + spec.timeout
    try:
        client = _connect(spec, min(COMMAND_TIMEOUT, spec.timeout))
    except _CannotTell as exc:
        return MailboxAnswer(None, str(exc))
    try:
        return _session(client, spec, message_id, deadline=deadline, poll=poll, stop=stop)
    except _CannotTell as exc:
        return MailboxAnswer(None, str(exc))
    except (imaplib.IMAP4.error, OSError) as exc:
        return MailboxAnswer(None, f"IMAP session failed: {_describe(exc)}")
    finally:
        _logout(client)


def _open(spec: ImapConfirm, timeout: float, where: str) -> imaplib.IMAP4:
    """A session over TLS, not yet logged in; closed again when TLS cannot be had."""
    context = imap_tls_context(spec.verify_tls)
    client: imaplib.IMAP4 | None = None
    try:
        if spec.implicit_tls:
            client = imaplib.IMAP4_SSL(spec.host, spec.port, ssl_context=context, timeout=timeout)
            client.debug = 0
        else:
            client = imaplib.IMAP4(spec.host, spec.port, timeout=timeout)
            client.debug = 0
            _starttls(client, context, where)
    except BaseException:
        if client is not None:
            with contextlib.suppress(OSError):
                client.shutdown()  # the socket of a session that never became usable
        raise
    return client


def _connect(spec: ImapConfirm, timeout: float) -> imaplib.IMAP4:
    where = f"{spec.host}:{spec.port}"
    try:
        return _open(spec, timeout, where)
    except ssl.SSLCertVerificationError as exc:
        raise _CannotTell(
            f"TLS verification of the IMAP server {where} failed ({exc.verify_message}); "
            "check confirm_delivery.imap.verify_tls"
        ) from None
    except (imaplib.IMAP4.error, OSError) as exc:
        raise _CannotTell(f"cannot reach the IMAP server {where}: {_describe(exc)}") from None


def _starttls(client: imaplib.IMAP4, context: ssl.SSLContext, where: str) -> None:
    if "STARTTLS" not in client.capabilities:
        # Never fall back to clear text: the next thing sent would be the password.
        raise _CannotTell(f"the IMAP server {where} offers no STARTTLS; use imaps:// or enable STARTTLS")
    client.starttls(ssl_context=context)


def _session(
    client: imaplib.IMAP4,
    spec: ImapConfirm,
    message_id: str,
    *,
    deadline: float,
    poll: float,
    stop: threading.Event,
) -> MailboxAnswer:
    _login(client, spec)
    status, data = client.select(_mailbox_name(spec.mailbox))
    if status != "OK":
        raise _CannotTell(f"cannot open mailbox {spec.mailbox!r}: {_text(data)}")
    while True:
        uids = _search(client, message_id)
        if uids:
            deleted = _delete(client, uids)
            detail = f"found in {spec.mailbox} on {spec.host}" + ("" if deleted else "; could not delete it")
            return MailboxAnswer(True, detail, deleted=deleted)
        left = deadline - time.monotonic()
        if left <= 0:
            return MailboxAnswer(False, f"not in {spec.mailbox} on {spec.host} after {spec.timeout:g} s")
        if stop.wait(min(poll, left)):
            return MailboxAnswer(None, "stopped before the message was found")
        client.noop()  # lets the server announce mail that arrived since the last search


def _login(client: imaplib.IMAP4, spec: ImapConfirm) -> None:
    user = spec.username
    password = spec.password.get_secret_value()
    try:
        if "AUTH=PLAIN" in client.capabilities:
            # Sent as a continuation, which imaplib neither prints nor keeps in its history.
            token = f"\0{user}\0{password}".encode()
            client.authenticate("PLAIN", lambda _challenge: token)
        elif "LOGINDISABLED" not in client.capabilities:
            try:
                client.login(user, password)
            finally:
                _forget_history(client)
        elif "AUTH=LOGIN" in client.capabilities:
            # The older SASL LOGIN: the server asks "Username:", then "Password:".
            answers = iter((user.encode(), password.encode()))
            client.authenticate("LOGIN", lambda _challenge: next(answers, b""))
        else:
            raise _CannotTell("the IMAP server offers none of AUTH=PLAIN, LOGIN and AUTH=LOGIN")
    except imaplib.IMAP4.error as exc:
        raise _CannotTell(f"IMAP login as {user!r} refused: {_describe(exc)}") from None
    # Servers announce more after login (Dovecot adds UIDPLUS); imaplib keeps the first list.
    status, data = client.capability()
    if status == "OK" and data and isinstance(data[0], bytes):
        client.capabilities = tuple(data[0].decode("ascii", "replace").upper().split())


def _forget_history(client: imaplib.IMAP4) -> None:
    # imaplib keeps its last commands (LOGIN's arguments among them) to print on an abort.
    history = getattr(client, "_cmd_log", None)
    if isinstance(history, dict):
        history.clear()


def _search(client: imaplib.IMAP4, message_id: str) -> list[bytes]:
    status, data = client.uid("SEARCH", "HEADER", "Message-ID", f'"{message_id}"')
    if status != "OK":
        raise _CannotTell(f"IMAP SEARCH failed: {_text(data)}")
    found: list[bytes] = []
    for chunk in data:
        if isinstance(chunk, bytes):
            found.extend(chunk.split())
    return found


def _delete(client: imaplib.IMAP4, uids: list[bytes]) -> bool:
    """Flag the probe's message(s) deleted and expunge them, and only them where possible."""
    uid_set = ",".join(uid.decode("ascii") for uid in uids)
    status, _ = client.uid("STORE", uid_set, "+FLAGS.SILENT", r"(\Deleted)")
    if status != "OK":
        return False
    if "UIDPLUS" in client.capabilities:
        status, _ = client.uid("EXPUNGE", uid_set)
    else:
        status, _ = client.expunge()
    return status == "OK"


def _mailbox_name(name: str) -> str:
    # A quoted string: mailbox names may hold spaces ("Probe Inbox").
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _logout(client: imaplib.IMAP4) -> None:
    # imaplib's logout() closes the socket even when the server's answer is lost.
    with contextlib.suppress(imaplib.IMAP4.error, OSError):
        client.logout()


def _text(data: object) -> str:
    if isinstance(data, list) and data and isinstance(data[0], bytes):
        return data[0].decode("utf-8", "replace")[:200]
    return "no details"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
