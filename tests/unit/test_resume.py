"""Resuming a run killed during its retirement: the journal says what is left, the transaction finishes it."""

from __future__ import annotations

from fortiauto.journal import change_to_json
from fortiauto.results import Change
from fortiauto.resume import retirement_left
from tests.unit.fakes import FakeFortiGate, run_journaled

OLD = "fa-mx1-0badc0de"


def _delete(name: str = OLD) -> Change:
    return Change(
        task="certificate",
        path="vpn.certificate/local",
        mkey=name,
        action="delete",
        before={"name": name},
        after=None,
        vdom="root",
    )


def _update() -> Change:
    return Change(
        task="ssl_profile",
        path="firewall/ssl-ssh-profile",
        mkey="protect-mx1",
        action="update",
        before={"server-cert": [{"name": OLD}]},
        after={"server-cert": [{"name": "fa-mx1-ab12cd34"}]},
        vdom="root",
    )


def _entries(*lines: tuple[str, int | None, Change | None], device: str = "fgt-1") -> list[dict]:
    out: list[dict] = [{"type": "run", "run_id": "r1"}]
    for kind, seq, change in lines:
        entry: dict = {"type": kind, "device": device}
        if seq is not None:
            entry["seq"] = seq
        if change is not None:
            entry["change"] = change_to_json(change)
        out.append(entry)
    return out


def test_killed_after_the_commit_with_the_delete_journaled_but_not_done():
    entries = _entries(
        ("pre", 1, _update()), ("done", 1, None), ("commit", None, None), ("pre", 2, _delete())
    )
    left = retirement_left("r1", entries, "fgt-1")
    assert left is not None
    assert [c.mkey for c in left.deletes] == [OLD]
    assert "resuming run r1" in left.note
    assert OLD in left.note


def test_killed_after_the_commit_before_any_delete():
    entries = _entries(("pre", 1, _update()), ("done", 1, None), ("commit", None, None))
    left = retirement_left("r1", entries, "fgt-1")
    assert left is not None
    assert left.deletes == ()


def test_a_done_delete_is_not_repeated():
    entries = _entries(
        ("pre", 1, _update()),
        ("done", 1, None),
        ("commit", None, None),
        ("pre", 2, _delete()),
        ("done", 2, None),
        ("pre", 3, _delete("fa-mx1-11111111")),
    )
    left = retirement_left("r1", entries, "fgt-1")
    assert left is not None
    assert [c.mkey for c in left.deletes] == ["fa-mx1-11111111"]


def test_runs_that_are_not_a_retirement_to_finish():
    before_commit = _entries(("pre", 1, _update()), ("done", 1, None))
    assert retirement_left("r1", before_commit, "fgt-1") is None  # needs a rollback, not a resume
    ended = _entries(("pre", 1, _update()), ("done", 1, None), ("commit", None, None), ("end", None, None))
    assert retirement_left("r1", ended, "fgt-1") is None
    other_write = _entries(("commit", None, None), ("pre", 2, _update()))
    assert retirement_left("r1", other_write, "fgt-1") is None
    assert retirement_left("r1", _entries(("commit", None, None), device="fgt-2"), "fgt-1") is None


async def _run(gate, tmp_path, finish, run_id="run-2"):
    return await run_journaled(gate, tmp_path, run_id=run_id, finish_retirement=finish)


async def test_the_transaction_finishes_the_retirement_on_a_compliant_device(tmp_path):
    gate = FakeFortiGate()
    first, _ = await _run(gate, tmp_path, (), "run-1")
    assert first.status == "changed", first.reason
    gate.objects[("vpn.certificate/local", OLD)] = {"name": OLD, "q_ref": 0}  # the one the kill left
    result, entries = await _run(gate, tmp_path, (_delete(),))
    assert result.status == "changed", result.reason
    assert [(c.action, c.mkey) for c in result.changes] == [("delete", OLD)]
    assert ("vpn.certificate/local", OLD) not in gate.objects
    assert [e["change"]["action"] for e in entries if e["type"] == "pre"] == ["delete"]


async def test_a_certificate_already_gone_or_still_used_is_not_deleted(tmp_path):
    gate = FakeFortiGate()
    await _run(gate, tmp_path, (), "run-1")
    gate.objects[("vpn.certificate/local", "fa-mx1-11111111")] = {"name": "fa-mx1-11111111", "q_ref": 1}
    writes = gate.writes
    result, _ = await _run(gate, tmp_path, (_delete(), _delete("fa-mx1-11111111")))
    assert gate.writes == writes  # OLD was gone (the kill came after its delete), the other is in use
    assert result.status == "unchanged", result.reason
    assert result.plan is not None
    assert any("still referenced by 1 object(s)" in w for w in result.plan.warnings)
    assert ("vpn.certificate/local", "fa-mx1-11111111") in gate.objects
