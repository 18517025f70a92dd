"""The control API and every REST fault's symptom."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.integration.lab.conftest import Api

ADDRESSES = "/api/v2/cmdb/firewall/address"


@pytest.fixture
def faulty(api):
    """fgt-001 whose faults each test sets; cleared afterwards."""
    yield api
    assert api.faults("{}").status_code == 200


def test_state_is_byte_identical_after_write_and_revert(api):
    pristine = api.state()
    assert pristine == api.state()
    json.loads(pristine)
    policy = "/api/v2/cmdb/firewall/policy/1"
    api.put(policy, json={"inspection-mode": "proxy", "ssl-ssh-profile": "deep-inspection"})
    api.post(ADDRESSES, json={"name": "tmp", "subnet": "10.9.0.0/16"})
    api.put(policy, params={"action": "move", "after": "2"})
    assert api.state() != pristine
    api.put(policy, json={"inspection-mode": "flow", "ssl-ssh-profile": "certificate-inspection"})
    api.delete(f"{ADDRESSES}/tmp")
    api.put(policy, params={"action": "move", "before": "2"})
    assert api.state() == pristine


def test_state_masks_secrets(api):
    state = api.state().decode()
    assert "PRIVATE KEY" not in state
    assert '"private-key":"ENC ' in state


def test_requests_log_counts_api_calls_not_control_calls(api):
    api.get(ADDRESSES)
    api.post(ADDRESSES, json={"name": "counted"})
    api.get(ADDRESSES, params={"access_token": api.device.token})
    log = api.get("/__lab__/requests").json()
    assert (log["total"], log["writes"]) == (3, 1)
    assert [e["method"] for e in log["log"]] == ["GET", "POST", "GET"]
    assert log["log"][1]["status"] == 200
    assert api.device.token not in json.dumps(log)
    assert log["log"][0]["t"] <= log["log"][1]["t"] <= log["log"][2]["t"]


def test_reset_restores_seed_and_clears_counters(api):
    pristine = api.state()
    api.post(ADDRESSES, json={"name": "gone-after-reset"})
    api.reset()
    assert api.state() == pristine
    assert api.get("/__lab__/requests").json()["total"] == 0


def test_faults_endpoint_replaces_and_clears(faulty):
    assert faulty.faults("http500-on-write=2,api-latency=5").json() == {
        "http500-on-write": 2,
        "api-latency": 5,
    }
    assert faulty.get("/__lab__/faults").json() == {"http500-on-write": 2, "api-latency": 5}
    assert faulty.faults(json.dumps({"wrong-cert": True})).json() == {"wrong-cert": True}
    assert faulty.faults("{}").json() == {}
    bad = faulty.faults("no-such-fault")
    assert bad.status_code == 400
    assert "unknown fault" in bad.json()["error"]


def test_http500_on_write_fails_the_nth_write_without_effect(faulty):
    faulty.faults("http500-on-write=2")
    assert faulty.post(ADDRESSES, json={"name": "w1"}).status_code == 200
    failed = faulty.post(ADDRESSES, json={"name": "w2"})
    assert failed.status_code == 500
    assert failed.json()["status"] == "error"
    assert faulty.get(f"{ADDRESSES}/w2").status_code == 404
    assert faulty.post(ADDRESSES, json={"name": "w3"}).status_code == 200


def test_reset_on_write_applies_then_drops_the_connection(faulty):
    faulty.faults("reset-on-write=1")
    with pytest.raises(httpx.TransportError):
        faulty.post(ADDRESSES, json={"name": "lost-answer"})
    assert faulty.get(f"{ADDRESSES}/lost-answer").status_code == 200
    assert faulty.post(ADDRESSES, json={"name": "next"}).status_code == 200


def test_token_expiry_after_n_requests(faulty):
    faulty.faults("token-expiry-after=2")
    assert faulty.get(ADDRESSES).status_code == 200
    assert faulty.get(ADDRESSES).status_code == 200
    assert faulty.get(ADDRESSES).status_code == 401
    assert faulty.get("/__lab__/state").status_code == 200  # the control API is not affected


def test_rate_limit_answers_429(faulty):
    faulty.faults("rate-limit=3")
    statuses = [faulty.get(ADDRESSES).status_code for _ in range(8)]
    assert statuses[:3] == [200, 200, 200]
    assert 429 in statuses[3:]


def test_api_latency_delays_answers(faulty):
    faulty.faults("api-latency=400")
    quick = Api(faulty.lab)
    quick.http.timeout = httpx.Timeout(0.05)
    with pytest.raises(httpx.ReadTimeout):
        quick.get(ADDRESSES)
    quick.close()
    assert faulty.get(ADDRESSES).status_code == 200


def test_launch_faults_apply_per_device_and_survive_reset(lab_factory):
    lab = lab_factory("7.0", devices=2, faults="fgt-002:http500-on-write=1")
    first, second = Api(lab, 0), Api(lab, 1)
    assert first.get("/__lab__/faults").json() == {}
    assert second.get("/__lab__/faults").json() == {"http500-on-write": 1}
    second.reset()
    assert second.post(ADDRESSES, json={"name": "x"}).status_code == 500
    first.close()
    second.close()


def test_messages_start_empty(api):
    assert api.get("/__lab__/messages").json() == []
