"""A fault at every write point of a first apply: the device ends pristine or applied and green.

A first apply of one mail server makes five writes (certificate import, protocol options, SSL
profile, email filter profile, policy binding). For each write k and each fault (500 answer,
connection reset after the write took effect, token expiry, API latency beyond the client
timeout) fortiauto runs as a user would run it, and ``chaoskit.settle`` holds the result to the
invariant. The lab counts 500s, resets and token expiry itself; latency from write k on, and a
write held in transit until after the client's timeout (``slowlink``), are switched on at the
engine's client seam right before write k. ~1 s per case; the five latency cases run at once
(~10 s: the rollback's reads time out and back off too).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from fortiauto.fleet import FleetOptions, new_run_id, run_fleet
from fortiauto.probe import run_probe
from fortiauto.probe.delivery import SiteDelivery
from fortiauto.site.loader import load_site
from tests.chaos.chaoskit import (
    CliOps,
    TripAtWrite,
    cli_env,
    latency_at_write,
    run_cli,
    settle,
    variant,
    wait_for_requests,
    write_request_numbers,
)
from tests.chaos.conftest import ChaosLab
from tests.chaos.slowlink import SlowLink

pytestmark = pytest.mark.chaos

WRITES = [1, 2, 3, 4, 5]
DEVICE = "fgt-001"
_EXIT = {"changed": 0, "unchanged": 0, "rolled_back": 3, "failed": 4}


def _one(lab: ChaosLab, tmp_path: Path, **site: Any) -> tuple[Path, dict[str, str]]:
    return variant(lab.site, "one", devices=[DEVICE], fallback=[], **site), cli_env(tmp_path / "journal")


def _apply(site: Path, env: dict[str, str]) -> dict[str, Any]:
    run = run_cli("apply", str(site), "--yes", "--output", "json", env=env)
    result: dict[str, Any] = run.json()
    assert run.code == result["exit_code"], run
    (device,) = result["devices"]
    assert run.code == _EXIT[device["status"]], run
    return dict(device)


@pytest.fixture(scope="module")
def write_positions(chaos_lab_session: ChaosLab, tmp_path_factory: pytest.TempPathFactory) -> list[int]:
    """Where the writes fall in a clean first apply's request sequence (for ``token-expiry-after``)."""
    lab = chaos_lab_session
    lab.reset()
    site, env = _one(lab, tmp_path_factory.mktemp("reference"))
    assert _apply(site, env)["status"] == "changed"
    positions = write_request_numbers(lab.controls[DEVICE].requests()["log"])
    assert len(positions) == len(WRITES), positions
    lab.reset()
    return positions


@pytest.mark.parametrize("fault", ["http500-on-write", "reset-on-write"])
@pytest.mark.parametrize("write", WRITES)
def test_write_fault(chaos_lab: ChaosLab, tmp_path: Path, fault: str, write: int) -> None:
    pristine = chaos_lab.reset()
    control = chaos_lab.controls[DEVICE]
    site, env = _one(chaos_lab, tmp_path)
    control.faults(f"{fault}={write}")
    device = _apply(site, env)
    assert control.requests()["writes"] >= write  # the fault had its chance to fire
    # A 500 has no effect; a lost answer is never re-sent: either way the apply fails and rolls back.
    assert device["status"] == "rolled_back", device["reason"]
    settle(
        site,
        {DEVICE: control},
        {DEVICE: pristine[DEVICE]},
        {DEVICE: device["status"]},
        CliOps(env),
        results={DEVICE: device},
    )


@pytest.mark.parametrize("write", WRITES)
def test_token_expiry_at_write(
    chaos_lab: ChaosLab, tmp_path: Path, write: int, write_positions: list[int]
) -> None:
    """The token stops working exactly at write k; after it works again, ``rollback --last`` restores."""
    pristine = chaos_lab.reset()
    control = chaos_lab.controls[DEVICE]
    site, env = _one(chaos_lab, tmp_path)
    control.faults(f"token-expiry-after={write_positions[write - 1] - 1}")
    device = _apply(site, env)
    log = control.requests()["log"]
    assert log[write_positions[write - 1] - 1]["status"] == 401, log  # write k was the first refused
    assert device["status"] == "failed", device["reason"]  # it cannot verify anything without a token
    ends = settle(
        site,
        {DEVICE: control},
        {DEVICE: pristine[DEVICE]},
        {DEVICE: device["status"]},
        CliOps(env),
        results={DEVICE: device},
    )
    assert ends == {DEVICE: "pristine"}


async def _apply_in_process(site: Path, journal_dir: Path, factory: TripAtWrite) -> str:
    run = await run_fleet(
        load_site(site),
        options=FleetOptions(run_id=new_run_id(), journal_dir=journal_dir),
        client_factory=factory,
        prober=run_probe,
        delivery=SiteDelivery(),
    )
    (device,) = run.devices
    return device.status


async def test_latency_beyond_timeout_from_each_write(chaos_lab: ChaosLab, tmp_path: Path) -> None:
    """From write k on, every answer takes longer than the client waits (an overloaded device).

    Write k of 1..5 on device k, all at once: the client's read retries and backoff make each
    case take seconds of waiting, not of work.
    """
    pristine = chaos_lab.reset()
    cases = []
    for write, name in zip(WRITES, chaos_lab.names, strict=True):
        control = chaos_lab.controls[name]
        site = variant(chaos_lab.site, f"latency-{name}", devices=[name], fallback=[], timeout=0.2)
        cases.append((write, name, site, latency_at_write(control, write, latency_ms=500)))
    statuses = await asyncio.gather(
        *(_apply_in_process(site, tmp_path / name, trip) for _, name, site, trip in cases)
    )
    for (write, name, site, trip), status in zip(cases, statuses, strict=True):
        control = chaos_lab.controls[name]
        assert status in ("failed", "rolled_back"), f"write {write}: {status}"
        control.faults({})
        wait_for_requests(control, trip.sent)  # slow requests still land on the device
        ends = settle(
            site, {name: control}, {name: pristine[name]}, {name: status}, CliOps(cli_env(tmp_path / name))
        )
        assert ends == {name: "pristine"}, f"write {write}"


@pytest.mark.parametrize(
    "write",
    [
        1,
        2,
        # Writes 3 and 5 reference objects (certificate, profiles) the rollback deletes before the
        # held write arrives, so the device refuses it and stays pristine.
        3,
        4,
        5,
    ],
)
async def test_write_landing_after_the_timeout(chaos_lab: ChaosLab, tmp_path: Path, write: int) -> None:
    """Write k reaches the device only after fortiauto gave up on it; everything else is prompt."""
    pristine = chaos_lab.reset()
    control = chaos_lab.controls[DEVICE]
    port = int(control.device["url"].rsplit(":", 1)[1])
    async with SlowLink(port, delay=1.5) as link:
        site, env = _one(chaos_lab, tmp_path, timeout=0.2, urls={DEVICE: f"https://127.0.0.1:{link.port}"})
        factory = TripAtWrite(
            write=write,
            arm=lambda: setattr(link, "armed", True),
            disarm=lambda: setattr(link, "armed", False),
        )
        status = await _apply_in_process(site, tmp_path / "journal", factory)
        # The checks block; the link (on this loop) must keep forwarding meanwhile, the held write too.
        await asyncio.to_thread(wait_for_requests, control, factory.sent)
        await asyncio.to_thread(
            settle, site, {DEVICE: control}, {DEVICE: pristine[DEVICE]}, {DEVICE: status}, CliOps(env)
        )
