"""--model: what a 2 GB FortiGate takes on 7.4.4+ and 7.6.5+, and what system/status says."""

from __future__ import annotations

import pytest

from fortiauto_lab.errors import LabInputError
from fortiauto_lab.hardware import resolve_model

EMAIL = "/api/v2/cmdb/emailfilter/profile"
SSL = "/api/v2/cmdb/firewall/ssl-ssh-profile"
POLICY = "/api/v2/cmdb/firewall/policy/1"


def test_status_reports_the_model(lab_api):
    api = lab_api("7.4.4", model="FortiGate-60F")
    status = api.get("/api/v2/monitor/system/status").json()
    assert status["results"]["model"] == "FGT60F"
    assert status["results"]["model_number"] == "60F"
    assert status["serial"].startswith("FGT60F")
    assert api.results("/api/v2/monitor/web-ui/state")["is_vm"] is False


def test_2gb_model_on_7_4_4_has_no_proxy(lab_api):
    api = lab_api("7.4.4", model="FortiGate-60F")
    default = api.results(f"{EMAIL}/default")[0]
    assert "feature-set" not in default
    refused = api.post(EMAIL, json={"name": "e", "feature-set": "proxy"})
    assert refused.status_code == 500
    assert refused.json()["error"] == -651
    proxy = api.put(POLICY, json={"inspection-mode": "proxy"})
    assert proxy.status_code == 500
    assert api.put(POLICY, json={"inspection-mode": "flow"}).status_code == 200


@pytest.mark.parametrize(("version", "model"), [("7.4.3", "FortiGate-60F"), ("7.4.8", "FortiGate-100F")])
def test_proxy_stays_before_7_4_4_and_on_bigger_models(lab_api, version, model):
    api = lab_api(version, model=model)
    assert api.results(f"{EMAIL}/default")[0]["feature-set"] == "flow"
    assert api.put(POLICY, json={"inspection-mode": "proxy"}).status_code == 200


def test_2gb_model_on_7_6_5_proxies_mail_but_not_with_inspect_all(lab_api):
    api = lab_api("7.6.5", model="FortiGate-40F")
    assert api.post(EMAIL, json={"name": "e", "feature-set": "proxy"}).status_code == 200
    ports = {"name": "ports", "smtps": {"status": "deep-inspection", "ports": "465"}}
    assert api.post(SSL, json=ports).status_code == 200
    everything = {"name": "all-ports", "ssl": {"inspect-all": "deep-inspection"}}
    assert api.post(SSL, json=everything).status_code == 200
    # Per-protocol ports in a proxy policy: accepted.
    assert api.put(POLICY, json={"inspection-mode": "proxy", "ssl-ssh-profile": "ports"}).status_code == 200
    # An inspect-all profile in a proxy policy: refused, from either side.
    refused = api.put(POLICY, json={"ssl-ssh-profile": "all-ports"})
    assert refused.status_code == 500
    assert "inspects all ports" in " ".join(refused.json()["cli_error"])
    assert api.put(f"{SSL}/ports", json={"ssl": {"inspect-all": "deep-inspection"}}).status_code == 500
    assert api.results(POLICY)[0]["ssl-ssh-profile"] == "ports"


def test_same_model_on_7_6_5_is_fine_on_a_bigger_unit(lab_api):
    api = lab_api("7.6.5", model="FortiGate-200F")
    api.post(SSL, json={"name": "all-ports", "ssl": {"inspect-all": "deep-inspection"}})
    body = {"inspection-mode": "proxy", "ssl-ssh-profile": "all-ports"}
    assert api.put(POLICY, json=body).status_code == 200


def test_unknown_model_is_a_lab_input_error():
    assert resolve_model("fgt61f").name == "FortiGate-61F"
    with pytest.raises(LabInputError, match="unknown model"):
        resolve_model("FortiGate-9999Z")


def test_2gb_model_on_7_6_5_proxy_needs_a_mail_service_and_no_web_profiles(lab_api):
    api = lab_api("7.6.5", model="FortiGate-40F")
    # The seed's mail policy (SMTP, SMTPS) may go proxy; a web service beside them is accepted
    # (FortiOS drops its traffic) ...
    assert api.put(POLICY, json={"inspection-mode": "proxy"}).status_code == 200
    assert api.put(POLICY, json={"service": [{"name": "SMTP"}, {"name": "HTTPS"}]}).status_code == 200
    # ... but a proxy policy without any mail service is refused.
    refused = api.put(POLICY, json={"service": [{"name": "HTTPS"}]})
    assert refused.status_code == 500
    assert "needs at least one mail service" in " ".join(refused.json()["cli_error"])
    # Web filtering is refused in a proxy policy on this model, WAF in any policy.
    assert api.put(POLICY, json={"webfilter-profile": "x"}).status_code == 500
    assert api.put(POLICY, json={"inspection-mode": "flow", "webfilter-profile": "x"}).status_code == 200
    assert api.put(POLICY, json={"waf-profile": "x"}).status_code == 500
