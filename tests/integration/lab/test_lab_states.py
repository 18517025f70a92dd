"""Device states that shape the configuration: policy-based VDOMs, profile groups, shared SSL profiles."""

from __future__ import annotations

from tests.integration.lab.conftest import Api

POLICY = "/api/v2/cmdb/firewall/policy"
SECURITY = "/api/v2/cmdb/firewall/security-policy"


def test_policy_based_vdom_keeps_profiles_on_security_policies(api):
    assert api.faults("ngfw-policy-based").status_code == 200
    assert api.results("/api/v2/cmdb/system/settings")["ngfw-mode"] == "policy-based"
    policy = api.results(f"{POLICY}/1")[0]
    assert policy["ssl-ssh-profile"] == "certificate-inspection"
    assert "emailfilter-profile" not in policy  # a policy-based unit shows no profile fields there
    assert policy["inspection-mode"] == "flow"
    security = api.results(f"{SECURITY}/1")[0]
    assert security["emailfilter-profile"] == "default"
    assert security["dstaddr"][0]["name"] == "vip-mx1"
    # Profiles and proxy mode are refused on firewall/policy in this mode ...
    refused = api.put(f"{POLICY}/1", json={"emailfilter-profile": "default"})
    assert refused.status_code == 500
    assert "security-policy" in refused.json()["cli_error"]
    assert api.put(f"{POLICY}/1", json={"inspection-mode": "proxy"}).status_code == 500
    # ... and bound where they belong; the other VDOM is profile-based as before.
    assert api.put(f"{SECURITY}/1", json={"av-profile": ""}).status_code == 200
    assert api.results("/api/v2/cmdb/system/settings", params={"vdom": "dmz"})["ngfw-mode"] == "profile-based"
    dmz = api.put(f"{POLICY}/1", params={"vdom": "dmz"}, json={"emailfilter-profile": "default"})
    assert dmz.status_code == 200


def test_policy_based_data_plane_reads_the_security_policy(api):
    api.faults("ngfw-policy-based")
    device = api.device
    inspection = device.inspection("vip-mx1")
    assert inspection.policyid == 1
    assert inspection.utm  # the security policy's AV and email filter profiles
    assert not inspection.proxy  # policy-based mode is flow only
    api.put(f"{SECURITY}/1", json={"status": "disable"})
    assert device.inspection("vip-mx1").policyid is None  # no security policy lets it through


def test_clearing_the_state_brings_the_seed_back(api):
    api.faults("ngfw-policy-based=dmz")
    assert api.results(SECURITY, params={"vdom": "dmz"})
    assert api.results(SECURITY) == []
    api.faults("{}")
    assert api.results(SECURITY, params={"vdom": "dmz"}) == []
    assert api.results(f"{POLICY}/1", params={"vdom": "dmz"})[0]["emailfilter-profile"] == "default"


def test_profile_group_policy_applies_the_group(api):
    api.faults("profile-group")
    policy = api.results(f"{POLICY}/1")[0]
    assert (policy["profile-type"], policy["profile-group"]) == ("group", "mail-group")
    group = api.results("/api/v2/cmdb/firewall/profile-group/mail-group")[0]
    assert (group["emailfilter-profile"], group["ssl-ssh-profile"]) == ("default", "certificate-inspection")
    # A tool that binds single profiles on the policy changes nothing that acts on mail.
    api.post(
        "/api/v2/cmdb/firewall/ssl-ssh-profile", json={"name": "deep", "smtps": {"status": "deep-inspection"}}
    )
    assert api.put(f"{POLICY}/1", json={"ssl-ssh-profile": "deep"}).status_code == 200
    assert api.device.inspection("vip-mx1").ssl_mode == "certificate"
    # Changing the group's member does.
    assert (
        api.put(
            "/api/v2/cmdb/firewall/profile-group/mail-group", json={"ssl-ssh-profile": "deep"}
        ).status_code
        == 200
    )
    assert api.device.inspection("vip-mx1").ssl_mode == "resign"
    # The group is in use: it cannot be deleted.
    assert api.delete("/api/v2/cmdb/firewall/profile-group/mail-group").json()["error"] == -23


def test_shared_ssl_profile_carries_another_certificate(api):
    api.faults("shared-ssl-profile")
    profile = api.results("/api/v2/cmdb/firewall/ssl-ssh-profile/protect-mx1")[0]
    assert profile["server-cert-mode"] == "replace"
    assert [c["name"] for c in profile["server-cert"]] == ["www-example"]
    users = [p for p in api.results(POLICY) if p["ssl-ssh-profile"] == "protect-mx1"]
    assert [p["name"] for p in users] == ["inbound-https-www"]
    # The other site's certificate is in use by that profile.
    assert api.delete("/api/v2/cmdb/vpn.certificate/local/www-example").json()["error"] == -23


def test_states_are_listed_and_survive_a_reset(lab_factory):
    lab = lab_factory("7.2", faults="fgt-001:profile-group=dmz")
    api = Api(lab)
    api.reset()
    assert api.get("/__lab__/faults").json() == {"profile-group": "dmz"}
    assert api.results(f"{POLICY}/1", params={"vdom": "dmz"})[0]["profile-type"] == "group"
    api.close()
