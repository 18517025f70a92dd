"""Retries on fresh connections (with an injected sleep) and the judgement against the baseline."""

from __future__ import annotations

import asyncio

import pytest

from fortiauto.probe import FailureClass, against_baseline, probe_once, run_probe
from fortiauto.results import ProbeResult
from fortiauto.site import ProbeTransaction
from tests.unit.probe.conftest import SpecFactory
from tests.unit.probe.servers import Mailbox, Tls, aiosmtpd_server, banner_then, scripted

TRANSACTION = ProbeTransaction(mail_from="probe@example.test", rcpt_to="postmaster@example.test")


class Sleeps:
    """Injected ``sleep``: records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


async def test_a_flap_passes_on_the_second_attempt(make_spec: SpecFactory, mx_tls: Tls) -> None:
    sleeps = Sleeps()
    async with aiosmtpd_server(Mailbox(), starttls=mx_tls, hang_up_first=1) as port:
        result = await run_probe(make_spec(port, retries=3, retry_delay=7.0), sleep=sleeps)

    assert result.passed, result.transcript
    assert result.attempts == 2
    assert sleeps.delays == [7.0]


async def test_transient_421_banner_is_retried_until_retries_run_out(make_spec: SpecFactory) -> None:
    sleeps = Sleeps()
    connections = 0

    async def busy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.write(b"421 4.3.2 server busy\r\n")
        await writer.drain()

    async with scripted(busy) as port:
        result = await run_probe(make_spec(port, retries=3, retry_delay=2.0), sleep=sleeps)

    assert result.failure_class == FailureClass.BAD_BANNER
    assert result.attempts == 3
    assert connections == 3  # a fresh connection per attempt
    assert sleeps.delays == [2.0, 2.0]


async def test_rcpt_4xx_is_retried_and_5xx_is_not(make_spec: SpecFactory, mx_tls: Tls) -> None:
    outcomes = {}
    for reply in ("451 4.7.1 greylisted", "550 5.1.1 no such user"):
        sleeps = Sleeps()
        async with aiosmtpd_server(Mailbox(rcpt_reply=reply), starttls=mx_tls) as port:
            spec = make_spec(port, retries=3, transaction=TRANSACTION)
            outcomes[reply[0]] = (await run_probe(spec, sleep=sleeps), sleeps.delays)

    transient, transient_sleeps = outcomes["4"]
    permanent, permanent_sleeps = outcomes["5"]
    assert transient.failure_class == permanent.failure_class == FailureClass.ENVELOPE_REJECTED
    assert (transient.attempts, len(transient_sleeps)) == (3, 2)
    assert (permanent.attempts, permanent_sleeps) == (1, [])


async def test_wrong_certificate_is_not_retried(make_spec: SpecFactory, mx_tls: Tls) -> None:
    sleeps = Sleeps()
    async with aiosmtpd_server(Mailbox(), starttls=mx_tls) as port:
        result = await run_probe(make_spec(port, retries=3), pin_sha256="00" * 32, sleep=sleeps)

    assert result.failure_class == FailureClass.CERTIFICATE_MISMATCH
    assert result.attempts == 1
    assert sleeps.delays == []


async def test_stripped_starttls_is_a_downgrade_against_the_baseline(
    make_spec: SpecFactory, mx_tls: Tls
) -> None:
    async with aiosmtpd_server(Mailbox(), starttls=mx_tls) as port:
        baseline = await run_probe(make_spec(port, mode="opportunistic"))
    async with aiosmtpd_server(Mailbox(strip_starttls=True), starttls=mx_tls) as port:
        spec = make_spec(port, mode="opportunistic", retries=3)
        alone = await run_probe(spec)
        judged = await run_probe(spec, baseline=baseline, sleep=Sleeps())

    assert baseline.passed
    assert baseline.starttls_advertised is True
    assert alone.passed  # opportunistic on its own accepts plain text ...
    assert not judged.passed  # ... but not where TLS used to be offered
    assert judged.failure_class == FailureClass.STARTTLS_MISSING
    assert judged.attempts == 1
    assert judged.steps[-1].step == "baseline"
    assert "downgrade" in judged.transcript[-1]


async def test_probe_once_is_one_attempt(make_spec: SpecFactory) -> None:
    async with scripted(banner_then({}, banner=b"421 busy\r\n")) as port:
        result = await probe_once(make_spec(port, retries=5))

    assert result.attempts == 1
    assert result.failure_class == FailureClass.BAD_BANNER


async def test_cancelling_a_probe_hangs_up(make_spec: SpecFactory) -> None:
    connected = asyncio.Event()
    hung_up = asyncio.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.set()
        await reader.read()
        hung_up.set()

    async with scripted(hold) as port:
        task = asyncio.create_task(run_probe(make_spec(port, timeout=60.0)))
        await connected.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(hung_up.wait(), 5)


def _result(**fields: object) -> ProbeResult:
    values: dict[str, object] = {"passed": True, "mode": "starttls"}
    values.update(fields)
    return ProbeResult(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("now_ms", "then_ms", "warned"),
    [(2500.0, 100.0, True), (900.0, 100.0, False), (1500.0, 1000.0, False)],
)
def test_slow_banner_is_a_warning_only_when_twice_as_slow_and_over_a_second(
    now_ms: float, then_ms: float, warned: bool
) -> None:
    judged = against_baseline(_result(banner_ms=now_ms), _result(banner_ms=then_ms))

    assert judged.passed
    assert any("slow banner" in w for w in judged.warnings) is warned


def test_issuer_change_is_reported() -> None:
    judged = against_baseline(_result(peer_issuer="Fortinet_CA_SSL"), _result(peer_issuer="Example CA"))

    assert judged.passed
    assert judged.warnings == ("certificate issuer changed: Example CA -> Fortinet_CA_SSL",)


def test_without_baseline_or_offer_nothing_changes() -> None:
    result = _result(starttls_advertised=False)

    assert against_baseline(result, None) is result
    assert against_baseline(result, _result(starttls_advertised=False)).passed
    assert against_baseline(result, _result(starttls_advertised=None)).passed
