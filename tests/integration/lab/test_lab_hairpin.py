"""The ``hairpin`` state: which policy a connection to a VIP matches depends on where it comes from.

Real SMTP sessions through the lab's VIP listener, from two loopback source addresses: the
state's address is "the Internet" (it comes in on the VIP's external interface and matches the
inbound policy); any other address is an inside host and matches the hairpin policy. That is
why a probe run from inside proves nothing about inbound mail.
"""

from __future__ import annotations

import smtplib

import pytest

from fortiauto_lab.states import HAIRPIN_POLICY
from tests.integration.lab.test_lab_dataplane import vip_port

POLICIES = "/api/v2/cmdb/firewall/policy"
OUTSIDE = "127.0.0.2"
INSIDE = "127.0.0.1"


def _hairpin_id(api) -> int:
    return next(p["policyid"] for p in api.results(POLICIES) if p["name"] == HAIRPIN_POLICY)


def _banner(api, source: str) -> int:
    """The reply code of a fresh session's banner and EHLO from ``source`` (0: no session)."""
    try:
        with smtplib.SMTP(timeout=5, source_address=(source, 0)) as client:
            code, _ = client.connect("127.0.0.1", vip_port(api))
            client.ehlo("gw.probe-site.net")
            return code
    except (smtplib.SMTPServerDisconnected, ConnectionError):
        return 0


def _hits(api, policyid: int) -> int:
    return api.device.hits.get(("root", policyid), 0)


def test_the_state_seeds_a_hairpin_policy_per_mail_vip(api):
    api.faults("hairpin")
    root = next(p for p in api.results(POLICIES) if p["name"] == HAIRPIN_POLICY)
    assert [d["name"] for d in root["dstaddr"]] == ["vip-mx1"]
    assert [d["name"] for d in root["srcintf"]] == ["internal"]
    assert (root["inspection-mode"], root["utm-status"]) == ("flow", "disable")
    dmz = [p["name"] for p in api.results(POLICIES, params={"vdom": "dmz"})]
    assert f"{HAIRPIN_POLICY}-dmz" in dmz
    api.faults("{}")
    assert HAIRPIN_POLICY not in [p["name"] for p in api.results(POLICIES)]


def test_inside_and_outside_sources_match_different_policies(api):
    api.faults(f"hairpin={OUTSIDE}")
    hairpin = _hairpin_id(api)

    assert _banner(api, OUTSIDE) == 220
    assert (_hits(api, 1), _hits(api, hairpin)) == (1, 0)
    assert _banner(api, INSIDE) == 220
    assert (_hits(api, 1), _hits(api, hairpin)) == (1, 1)


def test_a_broken_inbound_policy_is_invisible_from_inside(api):
    api.faults(f"hairpin={OUTSIDE}")
    assert api.put(f"{POLICIES}/1", json={"status": "disable"}).status_code == 200

    assert _banner(api, OUTSIDE) == 0  # no policy lets the Internet in: the session goes nowhere
    assert _banner(api, INSIDE) == 220  # the inside host still reaches the mail server


def test_without_the_state_interfaces_are_not_modelled(api):
    assert api.put(f"{POLICIES}/1", json={"srcintf": [{"name": "internal"}]}).status_code == 200
    assert _banner(api, OUTSIDE) == 220  # as before the state existed: any source, dstaddr only
    assert _hits(api, 1) == 1


@pytest.mark.parametrize("arg", ["not-an-address", "300.1.1.1"])
def test_the_state_takes_an_address(api, arg):
    answer = api.faults(f"hairpin={arg}")
    assert answer.status_code == 400
    assert "IP address" in answer.text
