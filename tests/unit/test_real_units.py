"""The transaction on units the lab does not play: a FortiOS family newer than the supported ones,
and the configuration revision FortiOS may fail to save. Against the in-memory fake FortiGate."""

from __future__ import annotations

from fortiauto.errors import NotFound
from tests.unit.fakes import FakeFortiGate, make_device, run_journaled


async def _run(gate: FakeFortiGate, tmp_path, **device_keys):
    return await run_journaled(gate, tmp_path, device=make_device().model_copy(update=device_keys))


async def test_a_newer_family_is_refused_before_any_write_naming_the_supported_ones(tmp_path):
    gate = FakeFortiGate("8.0.1")
    result, _ = await _run(gate, tmp_path)
    assert result.exit_code == 2
    assert "supported: 6.4, 7.0, 7.2, 7.4, 7.6" in result.reason
    assert "allow_newer_fortios" in result.reason
    assert gate.writes == 0
    assert gate.revisions == []


async def test_a_newer_family_tries_the_newest_desired_state_when_the_site_opts_in(tmp_path):
    gate = FakeFortiGate("8.0.1")
    result, entries = await _run(gate, tmp_path, allow_newer_fortios=True)
    assert result.status == "changed", result.reason
    assert result.plan is not None
    assert any("newer than the supported families" in w for w in result.plan.warnings)
    assert any(e["type"] == "config_revision" for e in entries)
    assert gate.revisions == ["run-1"]


async def test_a_revision_that_cannot_be_saved_is_a_warning_not_a_stop(tmp_path, monkeypatch):
    gate = FakeFortiGate()
    original = gate.monitor_post

    async def refuse_revisions(path, body, **kwargs):
        if path == "system/config-revision/save":
            raise NotFound("no such monitor path", http_status=404, error_code=-3)
        return await original(path, body, **kwargs)

    monkeypatch.setattr(gate, "monitor_post", refuse_revisions)
    result, entries = await _run(gate, tmp_path)
    assert result.status == "changed", result.reason
    assert result.config_revision is None
    assert result.plan is not None
    assert any(w.startswith("configuration revision not saved") for w in result.plan.warnings)
    saved = next(e for e in entries if e["type"] == "config_revision")
    assert saved["id"] is None


async def test_a_revision_id_missing_from_the_answer_is_found_in_the_list(tmp_path, monkeypatch):
    gate = FakeFortiGate()
    original = gate.monitor_post

    async def anonymous(path, body, **kwargs):
        answer = await original(path, body, **kwargs)
        return None if path == "system/config-revision/save" else answer

    monkeypatch.setattr(gate, "monitor_post", anonymous)
    gate.monitor["system/config-revision"] = {
        "revisions": [
            {"id": 7, "time": 100, "comment": "someone else"},
            {"id": 9, "time": 200, "comment": "run-1"},
        ]
    }
    result, _ = await _run(gate, tmp_path)
    assert result.status == "changed", result.reason
    assert result.config_revision == "9"
