"""Certificate rotation against the lab: renewed certificate in the site -> import, rebind, probe, retire.

The old certificate goes only after the probe pinned to the new one passes; a failing probe puts
the device back byte for byte (old binding, no new import); a certificate something else still
uses is kept. Runtime: about 6 s.
"""

from __future__ import annotations

from tests.integration.day2.daykit import (
    FAST,
    derived_name,
    fingerprint,
    journal_actions,
    renewed_certificate,
    site_copy,
)
from tests.integration.engine.labkit import apply, cmdb, pyfortiapi_for, rollback_last

SSL_PROFILE = "firewall/ssl-ssh-profile/protect-mx1"


def _bound(fgt) -> list[str]:
    value = cmdb(fgt, SSL_PROFILE)[0]["server-cert"]
    return [value] if isinstance(value, str) else [c["name"] for c in value]


def _certificates(fgt) -> set[str]:
    return {c["name"] for c in cmdb(fgt, "vpn.certificate/local")}


async def test_renewed_certificate_is_rotated_and_the_old_one_retired(lab_factory, monkeypatch, tmp_path):
    lab = lab_factory("7.0")
    state_dir = lab.site.parent
    first = await apply(lab.site, tmp_path / "j")
    assert first.devices[0].status == "changed", first.devices[0].reason
    old = derived_name(state_dir, "certs/mx1.pem")
    renewed = renewed_certificate(state_dir, "mx1-renewed")
    new = derived_name(state_dir, renewed["cert"])
    site = site_copy(lab.site, "renewed", mail_server={"certificate": renewed})

    planned = await apply(site, tmp_path / "j", check=True, probe=False, command="plan")
    plan = planned.devices[0].plan
    assert plan is not None
    assert [(c.action, c.mkey) for c in plan.changes] == [
        ("import", new),
        ("update", "protect-mx1"),
        ("delete", old),
    ]
    assert any(f"certificate rotation {old} -> {new}" in w for w in plan.warnings)

    run = await apply(site, tmp_path / "j")
    device = run.devices[0]
    assert device.status == "changed", device.reason
    assert run.exit_code == 0
    assert device.probe is not None
    assert device.probe.peer_cert_sha256 == fingerprint(state_dir, renewed["cert"])  # pinned to the new one
    fgt = pyfortiapi_for(lab.info["devices"][0], lab.ca, monkeypatch)
    assert _bound(fgt) == [new]
    assert new in _certificates(fgt)
    assert old not in _certificates(fgt)
    # The delete came last, after the probe, and was journaled like every write.
    assert journal_actions(tmp_path / "j", run.run_id) == [
        ("import", "vpn.certificate/local", new),
        ("update", "firewall/ssl-ssh-profile", "protect-mx1"),
        ("delete", "vpn.certificate/local", old),
    ]
    assert [c.action for c in device.changes] == ["import", "update", "delete"]

    again = await apply(site, tmp_path / "j")
    assert again.devices[0].status == "unchanged", again.devices[0].reason

    # Undoing a finished rotation stops at the deleted certificate and says why (exit 4, a human).
    undone = await rollback_last(tmp_path / "j")
    assert [d.status for d in undone.devices] == ["failed"]
    assert any("never stores private keys" in item for item in undone.devices[0].left_over)
    assert "re-import it from its files" in undone.devices[0].reason  # the remedy, where the console shows it
    assert undone.devices[0].requests.writes == 0  # no write that could only fail
    assert _bound(fgt) == [new]  # nothing half-undone: the profile still binds a certificate that exists


async def test_failed_probe_after_rotation_restores_the_old_binding_byte_for_byte(lab_factory, tmp_path):
    lab = lab_factory("7.0")
    control = lab.control()
    state_dir = lab.site.parent
    first = await apply(lab.site, tmp_path / "j")
    assert first.devices[0].status == "changed", first.devices[0].reason
    before = control.state()
    # A renewal that lost the mail server's name: the pinned probe sees the new certificate, which
    # a strict sender would refuse (F11), so the rotation must be undone.
    renewed = renewed_certificate(state_dir, "mx1-wrong-name", sans=("other.example.test",))
    site = site_copy(
        lab.site, "wrong-name", mail_server={"certificate": renewed, "fallback": None, "probe": FAST}
    )
    run = await apply(site, tmp_path / "j")
    device = run.devices[0]
    assert device.status == "rolled_back", device.reason
    assert run.exit_code == 3
    assert device.probe is not None
    assert device.probe.failure_class is not None
    assert device.probe.failure_class.startswith("F11")
    assert control.state() == before  # old binding back, the new import gone, the old cert still there
    assert "delete" not in [a for a, _, _ in journal_actions(tmp_path / "j", run.run_id)]


async def test_old_certificate_still_in_use_elsewhere_is_kept(lab_factory, tmp_path):
    lab = lab_factory("7.0")
    control = lab.control()
    state_dir = lab.site.parent
    await apply(lab.site, tmp_path / "j")
    old = derived_name(state_dir, "certs/mx1.pem")
    # Someone bound the same certificate in a profile of their own.
    body = {"name": "admin-made", "server-cert-mode": "replace", "server-cert": [{"name": old}]}
    control.http.post("/api/v2/cmdb/firewall/ssl-ssh-profile", json=body).raise_for_status()
    renewed = renewed_certificate(state_dir, "mx1-renewed-2")
    run = await apply(site_copy(lab.site, "renewed-2", mail_server={"certificate": renewed}), tmp_path / "j")
    device = run.devices[0]
    assert device.status == "changed", device.reason
    assert [c.action for c in device.changes] == ["import", "update"]
    assert device.plan is not None
    assert f"kept certificate {old}: still referenced by 1 object(s)" in device.plan.warnings
    assert old in control.state().decode()
