"""Two mail servers in two vdoms of one device, in one run: each vdom gets its own objects.

The lab's second vdom ``dmz`` has vip-mx2 behind policy "inbound-smtp-dmz". Each certificate
is imported into its mail server's vdom (vdom scope), the profiles and policies change in
their own vdom, both probes pass and both messages are logged. Runtime: about 3 s.
"""

from __future__ import annotations

import json

from tests.integration.day2.daykit import derived_name, site_copy
from tests.integration.engine.labkit import apply, rollback_last


def _mx2(lab) -> dict:
    port = next(
        s["port"] for s in lab.info["devices"][0]["smtp"] if s["vip"] == "vip-mx2" and s["mode"] == "starttls"
    )
    return {
        "name": "mx2",
        "vdom": "dmz",
        "policy": {"name": "inbound-smtp-dmz"},
        "certificate": {"cert": "certs/mx2.pem", "key": "certs/mx2.key"},
        "emailfilter_profile": "mail-inbound",
        "ssl_profile": "protect-mx2",
        "protocol_options": "smtp-inbound",
        "probe": {
            "host": "127.0.0.1",
            "port": port,
            "mode": "starttls",
            "server_name": "mx2.example.test",
            "timeout": 5,
            "retries": 2,
            "retry_delay": 0.5,
            "transaction": {"mail_from": "probe@example.test", "rcpt_to": "postmaster@example.test"},
            "confirm_delivery": "lab",
        },
        "fallback": ["certificate-inspection"],
    }


def _names(vdom_state: dict, path: str) -> set[str]:
    return {str(o.get("name")) for o in vdom_state[path]}


async def test_two_vdoms_in_one_run(lab_factory, tmp_path):
    lab = lab_factory("7.2")
    control = lab.control()
    pristine = control.state()
    site = site_copy(lab.site, "two-vdoms", extra_servers=[_mx2(lab)])

    run = await apply(site, tmp_path / "j")
    device = run.devices[0]
    assert device.status == "changed", device.reason
    assert device.effect == "logged"  # both probes' messages are in their vdom's email filter log
    assert {(c.vdom, c.task) for c in device.changes} >= {("root", "policy"), ("dmz", "policy")}

    vdoms = json.loads(control.state())["vdoms"]
    mx1 = derived_name(lab.site.parent, "certs/mx1.pem")
    mx2 = derived_name(lab.site.parent, "certs/mx2.pem", "mx2")
    assert mx1 in _names(vdoms["root"], "vpn.certificate/local")
    assert mx1 not in _names(vdoms["dmz"], "vpn.certificate/local")
    assert mx2 in _names(vdoms["dmz"], "vpn.certificate/local")
    assert mx2 not in _names(vdoms["root"], "vpn.certificate/local")
    assert next(c for c in vdoms["dmz"]["vpn.certificate/local"] if c["name"] == mx2)["range"] == "vdom"
    dmz_policy = next(p for p in vdoms["dmz"]["firewall/policy"] if p["name"] == "inbound-smtp-dmz")
    assert dmz_policy["ssl-ssh-profile"] == "protect-mx2"
    assert dmz_policy["inspection-mode"] == "proxy"
    profile = next(p for p in vdoms["dmz"]["firewall/ssl-ssh-profile"] if p["name"] == "protect-mx2")
    assert profile["server-cert"] == [{"name": mx2}]

    again = await apply(site, tmp_path / "j")
    assert again.devices[0].status == "unchanged", again.devices[0].reason

    undone = await rollback_last(tmp_path / "j")
    assert [d.status for d in undone.devices] == ["rolled_back"]
    assert control.state() == pristine
