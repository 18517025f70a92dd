"""Two mail servers sharing one SSL/SSH profile settle: one desired state, and re-runs write nothing.

A second mail server with the same profiles and certificate file behind the same VIP: the
profile's ``server-cert`` list holds both mail servers' certificates, the comments name both,
and every later apply is a no-op (it used to alternate between the two, three writes a run).
On FortiOS 6.4 a profile holds one certificate: a plan error naming both, before any write.
"""

from __future__ import annotations

import copy

from ruamel.yaml import YAML

from tests.integration.day2.daykit import derived_name
from tests.integration.engine.labkit import apply, rollback_last


def _with_second_server(site, name: str = "mx1b"):
    yaml = YAML()
    data = yaml.load(site.read_text())
    servers = data["devices"][0]["mail_servers"]
    second = copy.deepcopy(servers[0])
    second["name"] = name
    servers.append(second)
    out = site.with_name("site-shared.yml")
    with out.open("w") as handle:
        yaml.dump(data, handle)
    return out


def _cmdb(control, path: str):
    response = control.http.get(f"/api/v2/cmdb/{path}")
    response.raise_for_status()
    return response.json()["results"]


async def test_two_mail_servers_sharing_profiles_settle(lab_factory, tmp_path):
    lab = lab_factory("7.2")
    control = lab.control()
    first = await apply(lab.site, tmp_path / "j")
    assert first.devices[0].status == "changed", first.devices[0].reason
    site = _with_second_server(lab.site)

    added = await apply(site, tmp_path / "j")
    device = added.devices[0]
    assert device.status == "changed", device.reason
    ssl = _cmdb(control, "firewall/ssl-ssh-profile/protect-mx1")[0]
    state_dir = lab.site.parent
    mx1, mx1b = derived_name(state_dir, "certs/mx1.pem"), derived_name(state_dir, "certs/mx1.pem", "mx1b")
    assert [c["name"] for c in ssl["server-cert"]] == [mx1, mx1b]
    assert ssl["comment"] == "fortiauto: Protecting SSL Server for mx1, mx1b"
    emailfilter = _cmdb(control, "emailfilter/profile/mail-inbound")[0]
    assert emailfilter["comment"] == "fortiauto: log all inbound mail for mx1, mx1b"

    for _ in range(2):  # it used to rewrite the binding and three comments on every run
        mark = control.requests()
        again = await apply(site, tmp_path / "j")
        assert again.devices[0].status == "unchanged", again.devices[0].reason
        assert again.devices[0].requests.writes == 0
        assert control.requests()["writes"] == mark["writes"]

    # Undoing the run that added mx1b restores the profile as mx1 alone had it, list and comment.
    undone = await rollback_last(tmp_path / "j")
    assert [d.status for d in undone.devices] == ["rolled_back"], undone.devices[0].reason
    ssl = _cmdb(control, "firewall/ssl-ssh-profile/protect-mx1")[0]
    assert [c["name"] for c in ssl["server-cert"]] == [mx1]
    assert ssl["comment"] == "fortiauto: Protecting SSL Server for mx1"


async def test_a_profile_holding_one_certificate_cannot_be_shared_on_6_4(lab_factory, tmp_path):
    lab = lab_factory("6.4")
    control = lab.control()
    site = _with_second_server(lab.site)
    run = await apply(site, tmp_path / "j")
    device = run.devices[0]
    assert run.exit_code == 2, device.reason
    assert "mx1 and mx1b" in device.reason
    assert "holds one certificate" in device.reason
    assert control.requests()["writes"] == 0
