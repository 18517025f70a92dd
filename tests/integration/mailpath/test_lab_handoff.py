"""The lab hands its mail to real mail stores: ``--maildir`` (read back by Dovecot) and ``--backend``
(a real Postfix behind the VIP: its banner, EHLO, STARTTLS and queue).

The probe is fortiauto's own, through the lab's VIP; what arrived is checked in the Maildir's
files, in Postfix's log and over IMAP, never in the lab's word alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fortiauto.probe import run_probe
from fortiauto.probe.delivery import ImapDelivery
from fortiauto.site.models import ProbeSpec, ProbeTransaction
from fortiauto_lab.errors import LabInputError
from fortiauto_lab.server import LabThread, start_lab
from tests.e2e.clikit import wait_until
from tests.integration.mailpath.mailkit import Dovecot, MailStore, Postfix, imap_spec, mail_server_with


def _vip(state_dir: Path, mode: str = "starttls") -> dict[str, Any]:
    info = json.loads((state_dir / "lab.json").read_text())
    return next(s for s in info["devices"][0]["smtp"] if s["vip"] == "vip-mx1" and s["mode"] == mode)


def _probe(vip: dict[str, Any], **extra: Any) -> ProbeSpec:
    return ProbeSpec(
        host=vip["host"],
        port=vip["port"],
        mode=vip["mode"],
        server_name="mx1.example.test",
        timeout=5,
        retries=1,
        transaction=ProbeTransaction(mail_from="probe@example.test", rcpt_to="postmaster@example.test"),
        **extra,
    )


async def test_maildir_receives_each_delivery_and_imap_finds_it(
    tmp_path: Path, store: MailStore, imap_server: Dovecot
) -> None:
    with LabThread(tmp_path / "lab", maildir=store.maildir) as lab:
        result = await run_probe(_probe(_vip(lab.state_dir)))
        assert result.passed, result.failure_class
        assert result.message_id
        files = store.holding(result.message_id)
        assert len(files) == 1
        text = files[0].read_text()
        assert text.startswith("Return-Path: <probe@example.test>\nDelivered-To: postmaster@example.test\n")
        assert "\r\n" not in text  # Maildir files use the local line ending

        device, server = mail_server_with(imap_spec(imap_server))
        assert await ImapDelivery(poll=0.1)(device, server, result.message_id) is True
        assert store.holding(result.message_id) == []
        # The lab's own record is still there: the Maildir is a copy, not a replacement.
        assert any(m["message_id"] == result.message_id for m in lab.devices[0].messages())


async def test_broken_mail_store_answers_451_and_records_nothing(tmp_path: Path, store: MailStore) -> None:
    with LabThread(tmp_path / "lab", maildir=store.maildir) as lab:
        (store.maildir / "tmp").rmdir()
        (store.maildir / "tmp").write_text("not a directory")
        result = await run_probe(_probe(_vip(lab.state_dir)))
        assert not result.passed
        assert any("451" in step.detail for step in result.steps)
        assert lab.devices[0].messages() == []


async def test_backend_relays_to_a_real_postfix(
    tmp_path: Path, store: MailStore, mta: Postfix, imap_server: Dovecot
) -> None:
    with LabThread(tmp_path / "lab", backend=f"127.0.0.1:{mta.port}") as lab:
        vip = _vip(lab.state_dir)
        # No implicit-TLS VIP in front of an MTA that is only reachable on its SMTP port.
        info = json.loads((lab.state_dir / "lab.json").read_text())
        assert {s["mode"] for s in info["devices"][0]["smtp"]} == {"starttls"}
        assert info["backend"] == f"127.0.0.1:{mta.port}"
        assert info["maildir"] is None

        result = await run_probe(_probe(vip))
        assert result.passed, (result.failure_class, [s.to_json() for s in result.steps])
        assert result.message_id
        # Postfix's own banner and EHLO came through the VIP, byte for byte.
        transcript = " ".join(step.detail for step in result.steps)
        assert "mx1.example.test ESMTP Postfix" in transcript
        assert "lab mail server" not in transcript

        device, server = mail_server_with(imap_spec(imap_server, timeout=20))
        assert await ImapDelivery(poll=0.2)(device, server, result.message_id) is True
        # Postfix logs the delivery as it finishes it: a moment after the file is in place.
        message_id = result.message_id
        wait_until(lambda: mta.delivered(message_id), 10, "Postfix's delivery record")
        assert "starttls=1" in mta.log_text()
        assert lab.devices[0].messages() == []  # the lab saw none of it: Postfix delivered


async def test_maildir_and_backend_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(LabInputError, match="exclude each other"):
        await start_lab(tmp_path / "lab", maildir=tmp_path / "Maildir", backend="127.0.0.1:2525")


@pytest.mark.parametrize("text", ["mail.example.test", "127.0.0.1:0", "127.0.0.1:70000", ":25", "host:port"])
async def test_backend_must_be_host_and_port(tmp_path: Path, text: str) -> None:
    with pytest.raises(LabInputError, match="--backend expects HOST:PORT"):
        await start_lab(tmp_path / "lab", backend=text)
