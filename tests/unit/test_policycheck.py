"""The policy check, pure: what makes a policy the inbound mail policy to a VIP."""

from __future__ import annotations

import pytest

from fortiauto.policycheck import policy_problems, policy_warnings, service_ports

CUSTOM = {
    "SMTP": {"name": "SMTP", "tcp-portrange": "25"},
    "SMTPS": {"name": "SMTPS", "tcp-portrange": "465"},
    "HTTPS": {"name": "HTTPS", "tcp-portrange": "443"},
    "RANGE": {"name": "RANGE", "tcp-portrange": "20-30:1024-65535 8000"},
    "ANYIP": {"name": "ANYIP", "protocol": "IP"},
}
GROUPS = {"Email Access": {"name": "Email Access", "member": [{"name": "SMTP"}, {"name": "SMTPS"}]}}
INBOUND = {
    "policyid": 1,
    "name": "inbound-smtp",
    "dstaddr": [{"name": "vip-mx1"}],
    "service": [{"name": "SMTP"}],
    "action": "accept",
}


def _problems(policy, *, port=25, mode="starttls", vips=frozenset({"vip-mx1"})):
    names = [s["name"] for s in policy.get("service", [])]
    return policy_problems(
        policy, vips=set(vips), ports=service_ports(names, CUSTOM, GROUPS), probe_port=port, probe_mode=mode
    )


def test_the_inbound_policy_passes():
    assert _problems(INBOUND) == []


def test_the_outbound_internet_policy_is_named_for_what_it_is():
    outbound = {
        "policyid": 2,
        "name": "outbound-internet",
        "dstaddr": [{"name": "all"}],
        "service": [{"name": "ALL"}],
    }
    assert _problems(outbound) == ["policy 2 (outbound-internet) sends traffic to all, not to a VIP"]


def test_a_deny_policy_and_a_service_that_misses_the_port():
    deny = INBOUND | {"action": "deny", "service": [{"name": "HTTPS"}]}
    problems = _problems(deny)
    assert "does not accept traffic (action deny)" in problems[0]
    assert "services (HTTPS) do not cover port 25" in problems[1]


@pytest.mark.parametrize(
    ("services", "mode", "port", "covered"),
    [
        (["SMTPS"], "smtps", 465, True),
        (["SMTP"], "smtps", 465, False),
        (["Email Access"], "starttls", 25, True),
        (
            ["RANGE"],
            "starttls",
            25,
            True,
        ),  # 20-30 covers 25 (the source range after ':' is not a port to match)
        (["RANGE"], "smtps", 8000, True),
        (["ANYIP"], "smtps", 465, True),
        (["SMTP"], "starttls", 31337, True),  # a VIP reached on a mapped port: the mode's port counts
    ],
)
def test_service_coverage(services, mode, port, covered):
    policy = INBOUND | {"service": [{"name": n} for n in services]}
    assert (_problems(policy, port=port, mode=mode) == []) is covered


def test_a_policy_that_logs_no_traffic_is_reported():
    assert "effect cannot be proven" in policy_warnings(INBOUND | {"logtraffic": "disable"})[0]
    assert policy_warnings(INBOUND | {"logtraffic": "utm"}) == []
