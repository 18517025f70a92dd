"""Monitor endpoints: status, certificate import/list/download, backup, HA facts, and the email filter log."""

from __future__ import annotations

import base64

import pytest

from fortiauto_lab.pki import issue_cert, make_ca

IMPORT = "/api/v2/monitor/vpn-certificate/local/import"
CERTS = "/api/v2/cmdb/vpn.certificate/local"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture(scope="module")
def mail_pair():
    return issue_cert(make_ca("test CA"), "mx1.example.test", sans=("mx1.example.test",))


def regular(name, pair, **extra):
    return {
        "type": "regular",
        "certname": name,
        "file_content": b64(pair.cert_pem),
        "key_file_content": b64(pair.key_pem),
        "scope": "vdom",
    } | extra


def test_status_and_license_carry_version_without_http_status(api):
    status = api.get("/api/v2/monitor/system/status").json()
    assert status["results"]["hostname"] == "fgt-001"
    assert status["version"] == "v7.0.15"
    assert "http_status" not in status
    lic = api.get("/api/v2/monitor/license/status").json()
    assert lic["status"] == "success"
    assert lic["results"]["vm"]["status"] == "vm_valid"


def test_unknown_monitor_path_is_404_and_wrong_method_405(api):
    assert api.get("/api/v2/monitor/system/nothing").status_code == 404
    assert api.post("/api/v2/monitor/system/status").status_code == 405


def test_import_lists_downloads_and_refuses_a_duplicate(api, mail_pair):
    response = api.post(IMPORT, json=regular("mx1-test", mail_pair))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "success"
    (cert,) = api.results(f"{CERTS}/mx1-test")
    assert cert["source"] == "user"
    assert cert["private-key"].startswith("ENC ")
    assert "PRIVATE KEY" not in api.get(f"{CERTS}/mx1-test").text
    listed = api.results("/api/v2/monitor/system/available-certificates", params={"filter": "name==mx1-test"})
    assert listed[0]["subject"]["CN"] == "mx1.example.test"
    assert listed[0]["type"] == "local-cer"
    assert listed[0]["q_ref"] == 0
    download = api.get(
        "/api/v2/monitor/system/certificate/download", params={"mkey": "mx1-test", "type": "local-cer"}
    )
    assert download.text == mail_pair.cert_pem
    again = api.post(IMPORT, json=regular("mx1-test", mail_pair))
    assert again.status_code == 500
    assert again.json()["error"] == -5


def test_comments_are_set_later_through_cmdb(api, mail_pair):
    api.post(IMPORT, json=regular("mx1-c", mail_pair))
    assert api.put(f"{CERTS}/mx1-c", json={"comments": "fortiauto run 1"}).status_code == 200
    assert api.results(f"{CERTS}/mx1-c")[0]["comments"] == "fortiauto run 1"


def test_import_validates_the_key_and_the_encoding(api, mail_pair):
    other = issue_cert(make_ca("other CA"), "other.example.test")
    mismatch = regular("bad", mail_pair, key_file_content=b64(other.key_pem))
    assert api.post(IMPORT, json=mismatch).json()["error"] == -145
    raw_pem = regular("bad", mail_pair, file_content=mail_pair.cert_pem)
    assert api.post(IMPORT, json=raw_pem).json()["error"] == -145
    assert api.post(IMPORT, json={"type": "regular"}).status_code == 424
    assert api.get(f"{CERTS}/bad").status_code == 404


def test_certificate_in_use_cannot_be_deleted(api, mail_pair):
    api.post(IMPORT, json=regular("mx1-used", mail_pair))
    profile = {"name": "protect", "server-cert-mode": "replace", "server-cert": [{"name": "mx1-used"}]}
    assert api.post("/api/v2/cmdb/firewall/ssl-ssh-profile", json=profile).status_code == 200
    refused = api.delete(f"{CERTS}/mx1-used")
    assert refused.json()["error"] == -23
    listed = api.results("/api/v2/monitor/system/available-certificates", params={"mkey": "mx1-used"})
    assert listed[0]["q_ref"] == 1
    api.delete("/api/v2/cmdb/firewall/ssl-ssh-profile/protect")
    assert api.delete(f"{CERTS}/mx1-used").status_code == 200


def test_factory_certificates_are_listed(api):
    rows = api.results("/api/v2/monitor/system/available-certificates")
    by_name = {r["name"]: r for r in rows}
    assert by_name["Fortinet_CA_SSL"]["type"] == "local-ca"
    assert by_name["Fortinet_Factory"]["is_built_in"] is True
    assert by_name["Fortinet_SSL"]["q_ref"] >= 1  # default server-cert of the built-in profiles


def test_config_backup_get_and_post(api):
    text = api.get("/api/v2/monitor/system/config/backup", params={"scope": "global"}).text
    assert text.startswith("#config-version=FGVM64-7.0.15-FW-build0632-")
    assert 'edit "vip-mx1"' in text
    assert "BEGIN PRIVATE KEY" not in text
    posted = api.post(
        "/api/v2/monitor/system/config/backup", json={"scope": "vdom"}, params={"vdom": "dmz"}
    ).text
    assert "vip-mx2" in posted
    assert "vip-mx1" not in posted


def test_backup_get_refused_from_7_4_5(api_for):
    api = api_for("7.4")
    assert api.get("/api/v2/monitor/system/config/backup", params={"scope": "global"}).status_code == 405
    assert api.post("/api/v2/monitor/system/config/backup", json={"scope": "global"}).status_code == 200


def test_ha_and_central_management_say_standalone(api):
    assert api.results("/api/v2/cmdb/system/ha")["mode"] == "standalone"
    assert api.results("/api/v2/cmdb/system/central-management")["type"] == "none"
    checksums = api.results("/api/v2/monitor/system/ha-checksums")
    assert checksums[0]["serial_no"] == api.device.serial
    assert api.results("/api/v2/monitor/system/central-management/status")["type"] == "none"


def test_policy_stats_list_every_policy(api):
    rows = api.results("/api/v2/monitor/firewall/policy")
    assert [r["policyid"] for r in rows] == [0, 1, 2]
    assert {"hit_count", "bytes", "active_sessions"} <= set(rows[1])


def log_message(api, subject):
    # The seam the data plane writes through (DeviceView.log_emailfilter).
    port = str(api.device.backends["vip-mx1"].smtp_port)
    api.device.log_emailfilter(
        {
            "date": "2026-01-01",
            "time": "10:00:00",
            "logid": "0508020503",
            "type": "utm",
            "subtype": "emailfilter",
            "eventtype": "smtp",
            "policyid": "1",
            "sessionid": "7",
            "dstport": port,
            "from": "a@example.test",
            "to": "b@example.test",
            "subject": subject,
            "msg": "general email log",
        }
    )


def test_emailfilter_log_raw_and_json(api):
    log_message(api, "first TOKEN-A")
    log_message(api, "second TOKEN-B")
    raw = api.get("/api/v2/log/memory/emailfilter/raw", params={"rows": "10"}).text.splitlines()
    assert len(raw) == 2
    assert raw[0].startswith("date=2026-01-01 time=10:00:00")
    assert 'subject="second TOKEN-B"' in raw[0]  # newest first
    assert 'vd="root"' in raw[0]
    filtered = api.get("/api/v2/log/memory/emailfilter/raw", params={"filter": "subject=@TOKEN-A"}).text
    assert filtered.count("\n") == 1
    assert "TOKEN-A" in filtered
    body = api.get("/api/v2/log/memory/emailfilter", params={"rows": "1"}).json()
    assert body["total_lines"] == 2
    assert body["results"][0]["policyid"] == 1
    assert api.get("/api/v2/log/memory/emailfilter/raw", params={"vdom": "dmz"}).text == ""
    # Memory is the seed's only log device: the disk path has no records (logsettings.py).
    assert api.get("/api/v2/log/disk/emailfilter/raw").text == ""
    assert api.get("/api/v2/log/memory/virus/raw").status_code == 404
