"""Strict (the lab's default) and ``--lenient``: the readings of behaviour FortiOS does not document.

Spam filtering: whether ``log-all`` logs when the profile performs no check is not documented;
strict reads it as "no": mail counts as inspected (and logged) only when the profile's checks
are on. ``ssl.inspect-all``: FortiOS hides the per-protocol blocks beside it; strict refuses a
write that sends one there and hides them on GET.
"""

from __future__ import annotations

from typer.testing import CliRunner

from fortiauto_lab import cli

SSL = "/api/v2/cmdb/firewall/ssl-ssh-profile"
EMAIL = "/api/v2/cmdb/emailfilter/profile"
POLICY = "/api/v2/cmdb/firewall/policy/1"


def _logging_path(api, **emailfilter: object) -> None:
    body = {"name": "mail-inbound", "feature-set": "proxy", "smtp": {"log-all": "enable"}} | emailfilter
    assert api.post(EMAIL, json=body).status_code == 200
    policy = {"inspection-mode": "proxy", "emailfilter-profile": "mail-inbound"}
    assert api.put(POLICY, json=policy).status_code == 200


def test_strict_logs_only_when_spam_checks_are_on(lab_api):
    api = lab_api("7.4", strict=True)
    _logging_path(api)
    off = api.device.inspection("vip-mx1")
    assert (off.logs_smtp, off.spam_checks) == (False, ())
    options = {"spam-filtering": "enable", "options": "spamfsip spamfsurl spamfschksum"}
    assert api.put(f"{EMAIL}/mail-inbound", json=options).status_code == 200
    on = api.device.inspection("vip-mx1")
    assert on.logs_smtp
    assert on.spam_checks == ("spamfsip", "spamfsurl", "spamfschksum")


def test_strict_is_the_default(lab_api):
    api = lab_api("7.4")
    _logging_path(api)
    assert api.device.inspection("vip-mx1").logs_smtp is False
    both = {"name": "both", "ssl": {"inspect-all": "deep-inspection"}, "smtps": {"status": "deep-inspection"}}
    assert api.post(SSL, json=both).status_code == 500


def test_lenient_lab_logs_with_log_all_alone(lab_api):
    api = lab_api("7.4", strict=False)
    _logging_path(api)
    inspection = api.device.inspection("vip-mx1")
    assert inspection.logs_smtp
    assert inspection.spam_checks == ()


def test_spam_filtering_without_options_checks_nothing(lab_api):
    api = lab_api("7.4", strict=True)
    _logging_path(api, **{"spam-filtering": "enable"})
    assert api.device.inspection("vip-mx1").logs_smtp is False


def test_strict_refuses_and_hides_protocol_blocks_beside_inspect_all(lab_api):
    api = lab_api("7.2", strict=True)
    both = {"name": "both", "ssl": {"inspect-all": "deep-inspection"}, "smtps": {"status": "deep-inspection"}}
    refused = api.post(SSL, json=both)
    assert refused.status_code == 500
    assert "hidden while ssl inspect-all" in refused.json()["cli_error"]
    one = {"name": "one", "ssl": {"inspect-all": "deep-inspection"}}
    assert api.post(SSL, json=one).status_code == 200
    shown = api.results(f"{SSL}/one")[0]
    assert not {"https", "ftps", "imaps", "pop3s", "smtps"} & set(shown)
    assert shown["ssl"]["inspect-all"] == "deep-inspection"
    # Per-protocol form alone is fine, and shows its blocks.
    ports = {"name": "ports", "smtps": {"status": "deep-inspection", "ports": "465"}}
    assert api.post(SSL, json=ports).status_code == 200
    assert api.results(f"{SSL}/ports")[0]["smtps"]["status"] == "deep-inspection"


def test_lenient_lab_keeps_both_forms(lab_api):
    api = lab_api("7.2", strict=False)
    both = {"name": "both", "ssl": {"inspect-all": "deep-inspection"}, "smtps": {"status": "deep-inspection"}}
    assert api.post(SSL, json=both).status_code == 200
    assert api.results(f"{SSL}/both")[0]["smtps"]["status"] == "deep-inspection"


def test_lab_up_is_strict_unless_told_lenient(monkeypatch, tmp_path):
    asked: list[bool] = []

    def run_lab(state_dir, **options):
        asked.append(options["strict"])
        return 0

    monkeypatch.setattr("fortiauto_lab.server.run_lab", run_lab)
    runner = CliRunner()  # the lab app has one command, so typer runs ``up`` without its name
    for flag in ([], ["--strict"], ["--lenient"]):
        result = runner.invoke(cli.app, ["--state-dir", str(tmp_path), *flag])
        assert result.exit_code == 0, result.output
    assert asked == [True, True, False]
