"""The probe through a real SOCKS5 proxy (OpenSSH's ``ssh -D``): checked on the proxy's and sshd's logs."""

from __future__ import annotations

import asyncio

import trustme

from fortiauto.probe import FailureClass, run_probe
from fortiauto.site import ProbeTransaction
from fortiauto.site.models import ProbeVia
from tests.integration.vantage.conftest import spec
from tests.integration.vantage.openssh import Socks, Sshd, needs_openssh, running_socks
from tests.unit.probe.servers import SERVER_NAME, Mailbox, Tls, aiosmtpd_server, closed_port, serving

pytestmark = needs_openssh

TRANSACTION = ProbeTransaction(rcpt_to="postmaster@mx-site.net")


async def _relayed(socks: Socks, port: int) -> int:
    # ssh logs a relayed connection when its channel is freed, just after the probe hung up.
    for _ in range(100):
        if socks.relayed_to(port):
            break
        await asyncio.sleep(0.02)
    return socks.relayed_to(port)


async def test_starttls_probe_through_socks5_leaves_from_the_proxy(sshd: Sshd, mx_tls: Tls) -> None:
    mailbox = Mailbox()
    with running_socks(sshd) as socks:
        async with aiosmtpd_server(mailbox, starttls=mx_tls, require_starttls=True) as port:
            result = await run_probe(
                spec(port, ProbeVia(socks5=socks.address), transaction=TRANSACTION),
                pin_sha256=mx_tls.sha256,
            )
        relayed = await _relayed(socks, port)

    assert result.passed, result.transcript
    assert result.vantage == f"socks5 {socks.address}"
    assert result.to_json()["vantage"] == f"socks5 {socks.address}"
    assert "vantage" not in [s.step for s in result.steps]  # SOCKS is reached inside CONNECT
    assert result.peer_cert_sha256 == mx_tls.sha256
    assert relayed == 1  # the proxy's own log: one connection relayed to the mail server
    assert [(target, to) for _, _, target, to in sshd.forwarded()] == [("127.0.0.1", port)]
    # No mail_from in the site: derived in the recipient's domain, which has an MX record.
    assert b"From: <fortiauto-probe@mx-site.net>" in mailbox.messages[0]


async def test_socks5_sends_the_name_for_the_proxy_to_resolve(sshd: Sshd, mx_tls: Tls) -> None:
    with running_socks(sshd) as socks:
        async with aiosmtpd_server(Mailbox(), implicit_tls=mx_tls) as port:
            result = await run_probe(
                spec(port, ProbeVia(socks5=socks.address), host="localhost", mode="smtps")
            )

    assert result.passed, result.transcript
    assert [(target, to) for _, _, target, to in sshd.forwarded()] == [("localhost", port)]


async def test_a_proxy_that_is_down_is_a_vantage_failure_not_a_mail_failure() -> None:
    with closed_port() as proxy_port, closed_port() as smtp_port:
        result = await run_probe(spec(smtp_port, ProbeVia(socks5=f"127.0.0.1:{proxy_port}")))

    assert result.failure_class == FailureClass.VANTAGE_FAILED
    assert f"socks5 127.0.0.1:{proxy_port}: cannot connect" in result.steps[-1].detail


async def test_a_refused_mail_server_behind_the_proxy_fails_as_mail(sshd: Sshd) -> None:
    with running_socks(sshd) as socks, closed_port() as port:
        result = await run_probe(spec(port, ProbeVia(socks5=socks.address)))

    # OpenSSH's SOCKS server answers CONNECT before its channel opens, then hangs up: what
    # a sender behind it would see too. Either way it is the mail path, never the vantage.
    assert not result.passed
    assert result.failure_class in (FailureClass.REFUSED, FailureClass.CLOSED_BEFORE_BANNER)
    assert [(target, to) for _, _, target, to in sshd.forwarded()] == [("127.0.0.1", port)]


async def test_chain_verification_works_the_same_through_the_proxy(sshd: Sshd, tmp_path) -> None:
    root = trustme.CA(organization_name="Mail Root CA")
    intermediate = root.create_child_ca()
    trust = tmp_path / "mail-root.pem"
    trust.write_bytes(root.cert_pem.bytes())
    complete = serving(intermediate.issue_cert(SERVER_NAME), tmp_path)
    leaf_only = serving(intermediate.issue_cert(SERVER_NAME), tmp_path, with_intermediates=False)
    with running_socks(sshd) as socks:
        via = ProbeVia(socks5=socks.address)
        async with aiosmtpd_server(Mailbox(), starttls=complete) as port:
            good = await run_probe(spec(port, via, verify_chain=trust))
        async with aiosmtpd_server(Mailbox(), starttls=leaf_only) as port:
            broken = await run_probe(spec(port, via, verify_chain=trust))

    assert good.passed, good.transcript
    assert broken.failure_class == FailureClass.CHAIN_UNTRUSTED
    assert len(sshd.forwarded()) == 2
