"""The transaction when the device, the disk, other admins and signals work against it.

Each case ends in one of three states, checked from the fake device's own store: byte for byte
as before, fully applied and verified, or ``failed`` (exit 4) naming exactly what is left.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import replace

import pytest

from fortiauto.errors import JournalUnwritable
from fortiauto.events import Events, NullReporter
from fortiauto.fleet import rollback_device
from fortiauto.journal import Journal, pending_undos, read_journal
from fortiauto.transaction import DeviceTransaction, TransactionOptions
from tests.unit.fakes import FakeFortiGate, FakeProber, factory, make_device

PROFILE = ("emailfilter/profile", "mail-inbound")


async def run(gate, tmp_path, *, journal=None, events=None, prober=None):
    journal = journal or Journal(tmp_path / "journal", "run-1")
    result = await DeviceTransaction(
        make_device(),
        options=TransactionOptions(run_id="run-1"),
        client_factory=factory(gate),
        prober=prober or FakeProber(gate),
        journal=journal,
        events=events,
    ).run()
    journal.close()
    return result, read_journal(journal.path)


@pytest.mark.parametrize("write", [1, 2, 3, 4, 5])
async def test_a_write_answered_success_that_never_landed_is_caught_by_the_read_back(tmp_path, write):
    gate = FakeFortiGate()
    before = gate.state()
    gate.swallow_write = write
    result, _ = await run(gate, tmp_path)
    assert (result.status, result.exit_code) == ("rolled_back", 3), result.reason
    assert "read-back" in result.reason
    assert gate.state() == before


async def test_answers_that_are_not_envelopes_after_a_write_leave_a_failed_result_listing_what_is_left(
    tmp_path,
):
    gate = FakeFortiGate()
    gate.mangle_after_write = 1  # the certificate import lands, every answer after it is garbage
    result, entries = await run(gate, tmp_path)
    assert (result.status, result.exit_code) == ("failed", 4), result.reason
    assert result.left_over, "what is left must be listed"
    assert all("state unknown" in line for line in result.left_over)
    assert "verified" not in result.reason.replace("unverified", "")
    # Nothing was recorded as undone, so `fortiauto rollback` still has the import to undo.
    assert pending_undos(entries)["fgt-1"]


async def test_a_create_refused_as_duplicate_never_deletes_the_other_admins_object(tmp_path):
    gate = FakeFortiGate()
    theirs = {"name": "mail-inbound", "comment": "made by another admin meanwhile"}

    def another_admin(write_number: int) -> None:
        if write_number == 4:  # just before the email filter profile's create
            gate.objects[PROFILE] = copy.deepcopy(theirs)

    gate.on_write = another_admin
    result, _ = await run(gate, tmp_path)
    assert (result.status, result.exit_code) == ("rolled_back", 3), result.reason
    assert gate.objects[PROFILE] == theirs
    assert ("vpn.certificate/local", "fa-mx1-ab12cd34") not in gate.objects


async def test_an_edit_between_plan_and_write_is_not_overwritten(tmp_path):
    gate = FakeFortiGate()
    policy = ("firewall/policy", "1")

    def another_admin(write_number: int) -> None:
        if write_number == 4:  # while the profiles are written, someone retunes the policy
            gate.objects[policy]["ssl-ssh-profile"] = "their-profile"

    gate.on_write = another_admin
    result, _ = await run(gate, tmp_path)
    assert result.status == "rolled_back", result.reason
    assert "changed on the device since it was planned" in result.reason
    assert gate.objects[policy]["ssl-ssh-profile"] == "their-profile"


async def test_a_write_whose_answer_says_the_revision_moved_stops_and_rolls_back(tmp_path):
    gate = FakeFortiGate()
    before = gate.state()
    gate.revision_moved_on_write = 5  # the policy update's answer: someone else edited meanwhile
    result, _ = await run(gate, tmp_path)
    assert (result.status, result.exit_code) == ("rolled_back", 3), result.reason
    assert "another admin is editing" in result.reason
    assert gate.state() == before


async def test_rollback_after_commit_leaves_a_later_edit_alone_unless_forced(tmp_path):
    gate = FakeFortiGate()
    result, entries = await run(gate, tmp_path)
    assert result.status == "changed", result.reason
    pristine_policy_profile = "certificate-inspection"
    gate.objects[PROFILE]["spam-log"] = "disable"  # another admin tunes the profile afterwards
    pending = pending_undos(entries)["fgt-1"]
    kept = await rollback_device(make_device(), pending, client_factory=factory(gate))
    assert (kept.status, kept.exit_code) == ("failed", 4)
    assert any(
        "changed on the device since" in line and "emailfilter/profile" in line for line in kept.left_over
    )
    assert gate.objects[PROFILE]["spam-log"] == "disable"  # their edit survives
    assert gate.objects[("firewall/policy", "1")]["ssl-ssh-profile"] == pristine_policy_profile  # ours undone
    forced = await rollback_device(make_device(), pending, client_factory=factory(gate), force=True)
    assert (forced.status, forced.exit_code) == ("rolled_back", 0), forced.reason
    assert PROFILE not in gate.objects


async def test_any_number_of_cancellations_during_the_rollback_let_it_finish(tmp_path):
    gate = FakeFortiGate()
    before = gate.state()
    prober = FakeProber(gate, fail_after=True)
    device_task = asyncio.ensure_future(run(gate, tmp_path, prober=prober))
    while gate.writes < 5:  # wait until the change is on the device and the probe is failing
        await asyncio.sleep(0.001)
    gate.read_delay = 0.01  # slow the undo's reads so the cancellations land inside it
    for _ in range(4):
        device_task.cancel()
        await asyncio.sleep(0.005)
    result, _ = await device_task
    assert result.status == "rolled_back", result.reason
    assert gate.state() == before


class _FailingJournal(Journal):
    def __init__(self, *args, fail_at: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fail_at = fail_at
        self.pre_lines = 0

    def _fail(self, kind) -> None:
        if kind == "pre":
            self.pre_lines += 1
            if self.pre_lines == self.fail_at:
                raise JournalUnwritable(f"journal {self.path} cannot record: No space left on device")

    def record(self, kind, **fields) -> None:
        self._fail(kind)
        super().record(kind, **fields)

    async def record_durable(self, kind, **fields) -> None:  # the path writes take
        self._fail(kind)
        await super().record_durable(kind, **fields)


async def test_a_journal_that_cannot_record_stops_the_write_and_rolls_back_the_rest(tmp_path):
    gate = FakeFortiGate()
    before = gate.state()
    journal = _FailingJournal(tmp_path / "journal", "run-1", fail_at=3)
    result, entries = await run(gate, tmp_path, journal=journal)
    assert (result.status, result.exit_code) == ("rolled_back", 3), result.reason
    assert "No space left" in result.reason
    assert gate.writes == 2 + 2  # two writes sent, the third never, two undos
    assert gate.state() == before
    assert [e["seq"] for e in entries if e["type"] == "pre"] == [1, 2]


class _BrokenPipe(NullReporter):
    def change_applied(self, device, change) -> None:
        raise BrokenPipeError(32, "Broken pipe")


async def test_a_reporter_that_breaks_never_aborts_the_transaction(tmp_path):
    gate = FakeFortiGate()
    events = Events([_BrokenPipe()])
    result, _ = await run(gate, tmp_path, events=events)
    assert result.status == "changed", result.reason
    assert events.failures
    assert "BrokenPipeError" in events.failures[0]


class _ClassedProber(FakeProber):
    """Answers with a given failure class at the baseline or after the change."""

    def __init__(self, gate, *, baseline=None, after=None) -> None:
        super().__init__(gate)
        self.classes = {"other": baseline, "after": after}

    async def __call__(self, spec, *, pin_sha256=None, baseline=None, subject_token=None):
        result = await super().__call__(
            spec, pin_sha256=pin_sha256, baseline=baseline, subject_token=subject_token
        )
        failure = self.classes["after" if pin_sha256 else "other"]
        if failure is None:
            return result
        return replace(result, passed=False, failure_class=failure)


async def test_a_vantage_that_fails_before_the_change_is_not_mail_already_broken(tmp_path):
    gate = FakeFortiGate()
    before = gate.state()
    result, _ = await run(gate, tmp_path, prober=_ClassedProber(gate, baseline="F0 vantage-failed"))
    assert (result.status, result.exit_code) == ("failed", 7), result.reason
    assert "vantage failed" in result.reason
    assert gate.writes == 0
    assert gate.state() == before


async def test_a_probe_judged_as_spam_after_the_change_keeps_the_change_but_is_not_success(tmp_path):
    gate = FakeFortiGate()
    result, _ = await run(gate, tmp_path, prober=_ClassedProber(gate, after="F18 spam-rejected"))
    assert (result.status, result.exit_code) == ("unproven", 6), result.reason
    assert "judged the probe's message as spam" in result.reason
    assert gate.objects[("firewall/policy", "1")]["inspection-mode"] == "proxy"  # not rolled back: mail flows
