"""The email filter profile's REST configuration decides what its anti-spam checks do to mail.

Profiles are changed over the REST API, lists seeded through the control API (``dnsbl-listed``);
mail goes through the lab's VIP with smtplib (STARTTLS, chain verified against the lab CA) and the
verdict is read back from the FortiOS log API (``raw``) and the mail server's own record.
"""

from __future__ import annotations

import smtplib
import ssl
import uuid

import pytest

from tests.integration.lab.test_lab_dataplane import fix, logged, vip_port

EMAIL = "/api/v2/cmdb/emailfilter/profile/default"
GOOD_HELO = "gw.probe-site.net"


def _send(api, subject: str, *, helo: str = GOOD_HELO) -> tuple[int, str]:
    context = ssl.create_default_context(cafile=api.ca)
    context.check_hostname = False  # smtplib names 127.0.0.1; the chain is still verified
    body = f"From: probe@probe-site.net\r\nTo: postmaster@example.net\r\nSubject: {subject}\r\n\r\nhello\r\n"
    with smtplib.SMTP("127.0.0.1", vip_port(api), local_hostname=helo, timeout=10) as client:
        client.starttls(context=context)
        client.ehlo(helo)
        client.mail("probe@probe-site.net")
        client.rcpt("postmaster@example.net")
        code, text = client.data(body.encode())
    return code, text.decode()


def _delivered(api, token: str) -> list[dict[str, object]]:
    return [m for m in api.get("/__lab__/messages").json() if token in str(m["subject"])]


def _profile(api, **smtp: str) -> None:
    options = smtp.pop("options", "spamhelodns")
    body = {"spam-filtering": "enable", "options": options, "smtp": {"log-all": "enable", **smtp}}
    assert api.put(EMAIL, json=body).status_code == 200


@pytest.fixture
def fixed(api, state_dir):
    fix(api, state_dir)  # Protecting SSL Server, proxy mode, the default profile in proxy feature set
    return api


def test_discard_answers_the_spam_reply_and_logs_blocked(fixed):
    _profile(fixed, action="discard")
    token = uuid.uuid4().hex
    code, text = _send(fixed, f"probe {token}", helo="probe.fortiauto.invalid")

    assert (code, text) == (554, "5.7.1 This email has been blocked. The HELO/EHLO domain is invalid.")
    assert _delivered(fixed, token) == []
    line = logged(fixed, token)
    assert 'action="blocked"' in line
    assert 'msg="helo-dns"' in line
    assert 'profile="default"' in line
    assert 'level="notice"' in line


def test_tag_follows_tag_type_and_tag_msg(fixed):
    _profile(fixed, action="tag", **{"tag-type": "subject header", "tag-msg": "[SPAM]"})
    token = uuid.uuid4().hex
    assert _send(fixed, f"probe {token}", helo="vm")[0] == 250

    (message,) = _delivered(fixed, token)
    assert message["subject"] == f"[SPAM] probe {token}"
    assert ["X-Spam-Tag", "[SPAM]"] in message["headers"]
    assert not any(name == "X-FEAS-SPAMINFO" for name, _ in message["headers"])
    assert 'action="tagged"' in logged(fixed, token)


def test_spam_log_off_keeps_the_verdict_out_of_the_log(fixed):
    _profile(fixed, action="tag")
    assert fixed.put(EMAIL, json={"spam-log": "disable"}).status_code == 200
    token = uuid.uuid4().hex
    assert _send(fixed, f"probe {token}", helo="localhost")[0] == 250
    assert _delivered(fixed, token)[0]["subject"] == f"Spam probe {token}"
    assert logged(fixed, token) == ""


def test_a_flow_feature_set_profile_judges_nothing(fixed):
    _profile(fixed, action="discard")
    assert fixed.put(EMAIL, json={"feature-set": "flow"}).status_code == 200
    token = uuid.uuid4().hex
    assert _send(fixed, f"probe {token}", helo="probe.fortiauto.invalid")[0] == 250
    assert _delivered(fixed, token)[0]["subject"] == f"probe {token}"


def test_a_clean_identity_is_logged_as_general_email(fixed):
    _profile(
        fixed, action="discard", options="spamhelodns spamraddrdns spamrbl spamfsip spamfsurl spamfschksum"
    )
    token = uuid.uuid4().hex
    assert _send(fixed, f"probe {token}")[0] == 250
    line = logged(fixed, token)
    assert 'action="log-only"' in line
    assert 'msg="general email log"' in line


def test_a_dnsbl_listing_set_through_the_control_api(fixed):
    _profile(fixed, action="tag", options="spamrbl")
    assert fixed.post("/__lab__/faults", content="dnsbl-listed").status_code == 200
    assert fixed.get("/__lab__/faults").json() == {"dnsbl-listed": "127.0.0.1"}
    token = uuid.uuid4().hex
    assert _send(fixed, f"probe {token}")[0] == 250

    (message,) = _delivered(fixed, token)
    assert ["X-FEAS-SPAMINFO", "dnsbl, path block/allow ip 127.0.0.1"] in message["headers"]
    assert 'msg="dnsbl, path block/allow ip 127.0.0.1"' in logged(fixed, token)
    # A bad address is a one-line refusal; the listing stays as it was.
    refused = fixed.post("/__lab__/faults", content="dnsbl-listed=not-an-address")
    assert refused.status_code == 400
    assert "takes an IP address" in refused.json()["error"]
    assert fixed.get("/__lab__/faults").json() == {"dnsbl-listed": "127.0.0.1"}
