"""A device left on a fallback rung stays there on later runs without re-breaking mail, until --retry-full."""

from __future__ import annotations

from fortiauto.fleet import FleetOptions, run_fleet
from fortiauto.fleet.fallback_memory import recall
from fortiauto.site import Site
from tests.unit.fakes import FakeFortiGate, FakeProber, factory, make_device


async def _run(gate, prober, tmp_path, run_id, **options):
    site = Site(version=1, devices=(make_device(("certificate-inspection",)),), path=tmp_path / "site.yml")
    fleet_options = FleetOptions(run_id=run_id, journal_dir=tmp_path / "journal", **options)
    run = await run_fleet(site, options=fleet_options, client_factory=factory(gate), prober=prober)
    return run.devices[0], run


async def test_the_fallback_is_remembered_and_the_full_fix_not_retried_until_asked(tmp_path):
    gate = FakeFortiGate()
    prober = FakeProber(gate, fail_after=True)  # deep inspection breaks mail on this unit
    first, run = await _run(gate, prober, tmp_path, "20261201T000001Z-aaaaaa")
    assert (first.status, run.exit_code, first.fallback_used) == ("fallback", 6, "certificate-inspection")
    remembered = recall(tmp_path / "journal", "fgt-1")
    assert remembered is not None
    assert remembered.because == "F4 banner-timeout"

    writes, calls = gate.writes, len(prober.calls)
    second, run = await _run(gate, prober, tmp_path, "20261201T000002Z-bbbbbb")
    assert (second.status, run.exit_code) == ("fallback", 6)
    assert f"since {remembered.since}" in second.reason
    assert "F4 banner-timeout" in second.reason
    assert gate.writes == writes  # no re-import, no rebind, no outage
    assert all(ok for _, ok in prober.calls[calls:])  # no failing probe of a retried full fix

    third, _ = await _run(gate, prober, tmp_path, "20261201T000003Z-cccccc", retry_full=True)
    assert third.status == "fallback"
    assert gate.writes > writes  # the full fix was tried again (and rolled back again)
    assert any(not ok for _, ok in prober.calls[calls:])


async def test_the_full_fix_holding_clears_the_note(tmp_path):
    gate = FakeFortiGate()
    await _run(gate, FakeProber(gate, fail_after=True), tmp_path, "20261201T000001Z-aaaaaa")
    assert recall(tmp_path / "journal", "fgt-1") is not None
    fixed, _ = await _run(gate, FakeProber(gate), tmp_path, "20261201T000002Z-bbbbbb", retry_full=True)
    assert fixed.status == "changed", fixed.reason
    assert recall(tmp_path / "journal", "fgt-1") is None
