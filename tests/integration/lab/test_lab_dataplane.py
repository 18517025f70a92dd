"""The REST side wired to the SMTP data plane: what the bound policy says is what mail experiences.

Policies are changed over the REST API only; mail goes through the VIP listener with
Python's smtplib (STARTTLS, verifying the chain against the lab CA). The KB's symptom:
with certificate-inspection, STARTTLS mail is delivered but never logged; with proxy
mode, a logging email filter profile and Protecting SSL Server, it is delivered and logged.
"""

from __future__ import annotations

import base64
import smtplib
import ssl
import uuid
from email.message import EmailMessage
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

POLICY = "/api/v2/cmdb/firewall/policy/1"


def vip_port(api, vip="vip-mx1", mode="starttls"):
    info = next(d for d in api.lab.info["devices"] if d["name"] == api.device.name)
    return next(s["port"] for s in info["smtp"] if s["vip"] == vip and s["mode"] == mode)


def send(api, subject: str, *, vip="vip-mx1") -> x509.Certificate:
    """Send one message through the VIP with STARTTLS; return the certificate the client was shown."""
    context = ssl.create_default_context(cafile=api.ca)
    context.check_hostname = False  # smtplib names 127.0.0.1; the chain is still verified
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = (
        "probe@example.test",
        "postmaster@example.test",
        subject,
    )
    message.set_content("lab wiring test\n")
    with smtplib.SMTP("127.0.0.1", vip_port(api, vip), timeout=10) as client:
        client.starttls(context=context)
        der = client.sock.getpeercert(binary_form=True)
        client.send_message(message)
    return x509.load_der_x509_certificate(der)


def common_name(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def subjects_delivered(api):
    return [m["subject"] for m in api.get("/__lab__/messages").json()]


def logged(api, token):
    return api.get("/api/v2/log/memory/emailfilter/raw", params={"filter": f"subject=@{token}"}).text


def import_mx1(api, state_dir: Path, name="mx1-lab"):
    body = {
        "type": "regular",
        "certname": name,
        "file_content": base64.b64encode((state_dir / "certs" / "mx1.pem").read_bytes()).decode(),
        "key_file_content": base64.b64encode((state_dir / "certs" / "mx1.key").read_bytes()).decode(),
    }
    assert api.post("/api/v2/monitor/vpn-certificate/local/import", json=body).status_code == 200


def fix(api, state_dir, *, ssl_profile="protect-mx1"):
    """The KB's recommended configuration, as fortiauto would write it.

    One SSL form (FortiOS hides the per-protocol blocks beside inspect-all, and the lab refuses
    them there), and an email filter that checks for spam (tag only): one that checks nothing
    logs nothing in the lab's strict reading.
    """
    import_mx1(api, state_dir)
    profile = {
        "name": "protect-mx1",
        "server-cert-mode": "replace",
        "server-cert": [{"name": "mx1-lab"}],
        "ssl": {"inspect-all": "deep-inspection"},
    }
    assert api.post("/api/v2/cmdb/firewall/ssl-ssh-profile", json=profile).status_code == 200
    email = {
        "feature-set": "proxy",
        "spam-filtering": "enable",
        "options": "spamfsip spamfsurl spamfschksum",
        "smtp": {"log-all": "enable", "action": "tag"},
    }
    assert api.put("/api/v2/cmdb/emailfilter/profile/default", json=email).status_code == 200
    policy = {"inspection-mode": "proxy", "ssl-ssh-profile": ssl_profile}
    assert api.put(POLICY, json=policy).status_code == 200


def test_baseline_inspection_is_the_field_report(api):
    insp = api.device.inspection("vip-mx1")
    assert (insp.policyid, insp.ssl_mode, insp.proxy, insp.utm, insp.logs_smtp) == (
        1,
        "certificate",
        False,
        True,
        False,
    )
    assert api.device.inspection("vip-mx2").policyid == 1
    assert api.device.inspection("vip-nowhere").policyid is None


def test_inspection_follows_the_policy(api, state_dir):
    fix(api, state_dir)
    insp = api.device.inspection("vip-mx1")
    assert (insp.ssl_mode, insp.proxy, insp.logs_smtp) == ("replace", True, True)
    assert insp.server_cert is not None
    assert insp.server_cert[0] == (state_dir / "certs" / "mx1.pem").read_text()
    api.put(POLICY, json={"ssl-ssh-profile": "deep-inspection"})
    assert api.device.inspection("vip-mx1").ssl_mode == "resign"
    api.put(POLICY, json={"ssl-ssh-profile": "no-inspection"})
    assert api.device.inspection("vip-mx1").ssl_mode == "none"
    api.put("/api/v2/cmdb/emailfilter/profile/default", json={"feature-set": "flow"})
    assert api.device.inspection("vip-mx1").logs_smtp is False
    api.put(POLICY, json={"status": "disable"})
    assert api.device.inspection("vip-mx1").policyid is None


def test_kb_symptom_certificate_inspection_delivers_but_does_not_log(api):
    token = uuid.uuid4().hex
    shown = send(api, f"baseline {token}")
    assert common_name(shown) == "mx1.example.test"  # the server's own cert, relayed
    assert f"baseline {token}" in subjects_delivered(api)
    assert logged(api, token) == ""


def test_the_fix_delivers_and_logs(api, state_dir):
    fix(api, state_dir)
    token = uuid.uuid4().hex
    shown = send(api, f"fixed {token}")
    assert common_name(shown) == "mx1.example.test"  # the imported cert, presented
    assert f"fixed {token}" in subjects_delivered(api)
    line = logged(api, token)
    assert 'subtype="emailfilter"' in line
    assert "policyid=1" in line
    assert 'vd="root"' in line
    hits = api.results("/api/v2/monitor/firewall/policy", params={"policyid": "1"})
    assert hits[0]["hit_count"] >= 1


def test_deep_inspection_resign_shows_the_inspection_ca(api, state_dir):
    fix(api, state_dir, ssl_profile="deep-inspection")
    with pytest.raises(ssl.SSLCertVerificationError):
        send(api, "resigned")  # signed by Fortinet_CA_SSL, which the lab CA bundle does not hold


def test_policy_disabled_refuses_mail(api):
    api.put(POLICY, json={"status": "disable"})
    with pytest.raises((smtplib.SMTPServerDisconnected, ConnectionError)):
        send(api, "nowhere")


def test_dmz_vip_is_served_by_its_own_policy(api):
    token = uuid.uuid4().hex
    send(api, f"dmz {token}", vip="vip-mx2")
    delivered = api.get("/__lab__/messages").json()
    assert any(m["vip"] == "vip-mx2" and token in m["subject"] for m in delivered)
