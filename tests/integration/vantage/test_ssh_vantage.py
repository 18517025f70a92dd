"""The probe through a real OpenSSH sshd: its connection starts at the SSH host, checked on sshd's own log.

Every test asserts on what sshd logged (``server_request_direct_tcpip ... target``) or on
what the mail server received, never only on fortiauto's result.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import SecretStr

from fortiauto.probe import FailureClass, run_probe
from fortiauto.site import ProbeTransaction
from tests.integration.vantage.conftest import spec, via_ssh
from tests.integration.vantage.openssh import Sshd, keygen, needs_openssh, running_sshd
from tests.unit.probe.servers import Mailbox, Tls, aiosmtpd_server, closed_port, scripted

pytestmark = needs_openssh

TRANSACTION = ProbeTransaction(mail_from="probe@mail-sender.net", rcpt_to="postmaster@mx-site.net")


async def test_starttls_probe_is_opened_by_the_ssh_host(sshd: Sshd, mx_tls: Tls) -> None:
    mailbox = Mailbox()
    async with aiosmtpd_server(mailbox, starttls=mx_tls, require_starttls=True) as port:
        result = await run_probe(spec(port, via_ssh(sshd), transaction=TRANSACTION), pin_sha256=mx_tls.sha256)

    assert result.passed, result.transcript
    assert result.vantage == f"ssh {sshd.user}@127.0.0.1:{sshd.port}"
    assert [s.step for s in result.steps][:3] == ["vantage", "connect", "banner"]
    assert "host key ssh-ed25519 SHA256:" in result.steps[0].detail
    assert result.peer_cert_sha256 == mx_tls.sha256  # the pin works the same through the tunnel
    assert f"=== Trying 127.0.0.1:{port} via ssh {sshd.user}@127.0.0.1:{sshd.port}..." in result.transcript
    # sshd itself opened exactly one connection, to the mail server: the probe came from there.
    assert [(target, to) for _, _, target, to in sshd.forwarded()] == [("127.0.0.1", port)]
    assert len(mailbox.messages) == 1
    assert b"From: <probe@mail-sender.net>" in mailbox.messages[0]


async def test_smtps_and_a_name_resolved_at_the_ssh_host(sshd: Sshd, mx_tls: Tls) -> None:
    async with aiosmtpd_server(Mailbox(), implicit_tls=mx_tls) as port:
        result = await run_probe(spec(port, via_ssh(sshd), host="localhost", mode="smtps"))

    assert result.passed, result.transcript
    assert "dns" not in [s.step for s in result.steps]  # not resolved here
    # The name travelled to the SSH host, which resolved it: what split DNS needs.
    assert [(target, to) for _, _, target, to in sshd.forwarded()] == [("localhost", port)]


async def test_wrong_host_key_fails_closed_before_any_connection(sshd: Sshd, tmp_path) -> None:
    impostor = keygen(tmp_path / "impostor")
    sshd.known_hosts.write_text(sshd.known_hosts_line(impostor.with_suffix(".pub")))
    connections = 0

    async def count(reader, writer) -> None:
        nonlocal connections
        connections += 1

    async with scripted(count) as port:
        result = await run_probe(spec(port, via_ssh(sshd), retries=3))

    assert not result.passed
    assert result.failure_class == FailureClass.VANTAGE_FAILED
    assert result.attempts == 1  # a host key does not change two seconds later: no retries
    assert "host key not accepted" in result.steps[-1].detail
    assert connections == 0
    assert sshd.forwarded() == []
    assert "Accepted publickey" not in sshd.log_text()  # never logged in to an unverified host


async def test_a_host_missing_from_known_hosts_is_not_accepted(sshd: Sshd) -> None:
    sshd.known_hosts.write_text("")
    with closed_port() as port:
        result = await run_probe(spec(port, via_ssh(sshd)))

    assert result.failure_class == FailureClass.VANTAGE_FAILED
    assert "host key not accepted" in result.steps[-1].detail
    assert sshd.forwarded() == []


async def test_refused_at_the_mail_server_is_f2_not_a_vantage_failure(sshd: Sshd) -> None:
    with closed_port() as port:
        result = await run_probe(spec(port, via_ssh(sshd)))

    assert result.failure_class == FailureClass.REFUSED
    assert [s.step for s in result.steps] == ["vantage", "connect"]
    assert result.steps[0].ok
    assert [(target, to) for _, _, target, to in sshd.forwarded()] == [("127.0.0.1", port)]


async def test_forwarding_forbidden_by_the_ssh_host_is_a_vantage_failure(tmp_path, mx_tls: Tls) -> None:
    with running_sshd(tmp_path / "noforward", allow_forwarding=False) as server:
        async with aiosmtpd_server(Mailbox(), starttls=mx_tls) as port:
            result = await run_probe(spec(port, via_ssh(server)))
        log = server.log_text()

    assert result.failure_class == FailureClass.VANTAGE_FAILED
    assert "will not forward" in result.steps[-1].detail
    assert "refused local port forward" in log or "not permitted" in log.lower(), log[-2000:]


async def test_an_ssh_host_that_does_not_answer_is_a_vantage_failure(sshd: Sshd) -> None:
    with closed_port() as ssh_port:
        via = via_ssh(sshd, ssh=f"{sshd.user}@127.0.0.1:{ssh_port}")
        result = await run_probe(spec(25, via, retries=2))

    assert result.failure_class == FailureClass.VANTAGE_FAILED
    assert result.attempts == 2  # an unreachable vantage may be a flap: retried
    assert result.steps[-1].step == "vantage"
    assert "cannot connect" in result.steps[-1].detail


async def test_an_encrypted_key_opens_with_its_passphrase_and_never_shows_it(
    sshd: Sshd, tmp_path, mx_tls: Tls
) -> None:
    phrase = "correct horse battery staple 7"
    locked = keygen(tmp_path / "locked", passphrase=phrase)
    sshd.folder.joinpath("authorized_keys").write_text(locked.with_suffix(".pub").read_text())

    async with aiosmtpd_server(Mailbox(), starttls=mx_tls) as port:
        good = await run_probe(spec(port, via_ssh(sshd, key=locked, passphrase=SecretStr(phrase))))
        wrong = await run_probe(spec(port, via_ssh(sshd, key=locked, passphrase=SecretStr("nope"))))

    assert good.passed, good.transcript
    assert wrong.failure_class == FailureClass.VANTAGE_FAILED
    assert "cannot use the key" in wrong.steps[-1].detail
    for result in (good, wrong):
        text = json.dumps(result.to_json()) + "\n".join(result.transcript)
        assert phrase not in text
        assert "nope" not in text
    assert len(sshd.forwarded()) == 1


async def test_retries_open_fresh_tunnels_and_cancelling_leaves_nothing_open(sshd: Sshd, mx_tls: Tls) -> None:
    async with aiosmtpd_server(Mailbox(), starttls=mx_tls, hang_up_first=1) as port:
        flapped = await run_probe(spec(port, via_ssh(sshd), retries=2, retry_delay=0.0))

    assert flapped.passed, flapped.transcript
    assert flapped.attempts == 2
    assert [to for _, _, _, to in sshd.forwarded()] == [port, port]  # one channel per attempt

    async def hold(reader, writer) -> None:
        await reader.read()  # never greets: the probe waits for its banner

    async with scripted(hold) as port:
        task = asyncio.create_task(run_probe(spec(port, via_ssh(sshd), timeout=60.0)))
        for _ in range(200):
            if len(sshd.forwarded()) == 3:
                break
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # sshd saw every probe session end, the cancelled one too: nothing holds a tunnel open.
    for _ in range(200):
        if sshd.log_text().count("Disconnected from user") == 3:
            break
        await asyncio.sleep(0.02)
    assert sshd.log_text().count("Disconnected from user") == 3
    assert len(sshd.forwarded()) == 3


async def test_an_unusable_key_or_known_hosts_file_is_named(sshd: Sshd, tmp_path) -> None:
    garbage = tmp_path / "garbage_key"
    garbage.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n-----END OPENSSH PRIVATE KEY-----\n")
    with closed_port() as port:
        bad_key = await run_probe(spec(port, via_ssh(sshd, key=garbage)))
        no_hosts = await run_probe(spec(port, via_ssh(sshd, known_hosts=tmp_path / "absent")))

    assert bad_key.failure_class == no_hosts.failure_class == FailureClass.VANTAGE_FAILED
    assert f"cannot use the key {garbage}" in bad_key.steps[-1].detail
    assert "known_hosts file" in no_hosts.steps[-1].detail
    assert sshd.forwarded() == []
