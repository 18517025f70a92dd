"""Saved plans (fortiauto/planfile.py): what counts as drift and how it is named; what loads.

Pure: plan records in, words out. The CLI round trip against the lab is in
tests/e2e/test_cli_change_board.py.
"""

from __future__ import annotations

import json

import pytest

from fortiauto.errors import InputError
from fortiauto.planfile import FORMAT, change_record, describe_drift, load_plan
from fortiauto.results import Change

POLICY = Change(
    "policy",
    "firewall/policy",
    1,
    "update",
    {"ssl-ssh-profile": "certificate-inspection"},
    {"ssl-ssh-profile": "protect-mx1"},
)
PROFILE = Change("emailfilter", "emailfilter/profile", "mail-inbound", "create", None, {"spam-log": "enable"})


def _record(*changes: Change, version: str = "7.0.15", rung: str | None = None) -> dict:
    return {"version": version, "rung": rung, "changes": [change_record(c) for c in changes]}


def test_the_same_plan_is_no_drift():
    assert describe_drift(_record(POLICY, PROFILE), _record(POLICY, PROFILE)) is None


def test_a_key_another_admin_moved_is_named_with_both_values():
    moved = Change(
        "policy", "firewall/policy", 1, "update", {"ssl-ssh-profile": "deep-inspection"}, POLICY.after
    )
    why = describe_drift(_record(POLICY), _record(moved))
    assert why == (
        'update firewall/policy/1 (vdom root): ssl-ssh-profile on the device was "certificate-inspection", '
        'now "deep-inspection"'
    )


def test_changes_that_appeared_or_went_and_another_version_are_each_named():
    why = describe_drift(_record(POLICY), _record(PROFILE, version="7.2.8")) or ""
    assert "FortiOS was 7.0.15 when planned, now 7.2.8" in why
    assert "update firewall/policy/1 (vdom root) is no longer needed" in why
    assert "create emailfilter/profile/mail-inbound (vdom root) is needed now but was not planned" in why


def test_a_create_that_became_an_update_is_drift():
    update = Change(
        "emailfilter",
        "emailfilter/profile",
        "mail-inbound",
        "update",
        {"spam-log": "disable"},
        {"spam-log": "enable"},
    )
    assert "was a create, now an update" in (describe_drift(_record(PROFILE), _record(update)) or "")


def test_load_refuses_what_is_not_a_plan_of_this_site_file(tmp_path):
    site = tmp_path / "site.yml"
    site.write_text("version: 1\n")
    plan = tmp_path / "plan.json"
    for text, reason in [
        ("{", "not JSON"),
        (json.dumps({"format": "terraform"}), "format is not"),
        (json.dumps({"format": FORMAT, "devices": [], "site": str(site)}), "not a mapping"),
        (json.dumps({"format": FORMAT, "devices": {}, "site": "/elsewhere.yml"}), "saved for /elsewhere.yml"),
        (
            json.dumps({"format": FORMAT, "devices": {}, "site": str(site), "site_sha256": "0" * 64}),
            "changed since",
        ),
    ]:
        plan.write_text(text)
        with pytest.raises(InputError, match=reason):
            load_plan(plan, site)
    with pytest.raises(InputError, match="cannot read the plan"):
        load_plan(tmp_path / "missing.json", site)
