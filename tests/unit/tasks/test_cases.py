"""Data-driven task cases: cases/<task>/<case>.yaml -> read body in, changes / noop reason / error out.

Each case names a FortiOS version (and the ``model`` running it, when that matters), the mail
server settings (the desired state is built by ``desired.recommended`` for that version and
model), what a GET returned (``current``, ``table`` for the policy task, or ``tables``: the rows
of each path, which the task's own ``read`` then reads), and what ``diff`` must produce. A new
FortiOS quirk is a new file here. ``expect.refused`` (or ``error: Refused: ...``) is a refusal
before any read, from the desired state itself.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from fortiauto import errors
from fortiauto.desired import desired_objects as render_desired
from fortiauto.fortios.version import SUPPORTED_FAMILIES, FortiOSVersion
from fortiauto.site import CertificateSpec, MailServer, PolicyRef, ProbeSpec
from fortiauto.tasks import REGISTRY, Target, find_policy

CASES = sorted(Path(__file__).parent.joinpath("cases").glob("*/*.yaml"))
FINGERPRINT = "ab12cd34" + "0" * 56


def _mail_server(spec: dict[str, Any]) -> MailServer:
    return MailServer(
        name=spec.get("name", "mx1"),
        policy=PolicyRef(**spec.get("policy", {"vip": "vip-mx1"})),
        certificate=CertificateSpec(
            cert=Path("mx1.pem"),
            key=Path("mx1.key"),
            fingerprint_sha256=spec.get("fingerprint", FINGERPRINT),
            cert_pem=spec.get("cert_pem", ""),
        ),
        emailfilter_profile=spec.get("emailfilter_profile", "mail-inbound"),
        ssl_profile=spec.get("ssl_profile", "protect-mx1"),
        protocol_options=spec.get("protocol_options", "smtp-inbound"),
        probe=ProbeSpec(host="127.0.0.1"),
        **({"spam_checks": tuple(spec["spam_checks"])} if "spam_checks" in spec else {}),
    )


class _Tables:
    """A ``FortiOSApi`` answering GETs from a case's ``tables`` (path -> rows); it writes nothing."""

    def __init__(self, tables: dict[str, list[dict[str, Any]]]) -> None:
        self.tables = tables

    async def get(self, path: str, mkey: Any = None, **_: Any) -> list[dict[str, Any]]:
        rows = self.tables.get(path, [])
        if mkey is None:
            return rows
        found = [r for r in rows if str(r.get("name", r.get("policyid"))) == str(mkey)]
        if not found:
            raise errors.NotFound(f"{path}/{mkey}")
        return found

    async def get_one(self, path: str, mkey: Any, **_: Any) -> dict[str, Any] | None:
        try:
            return (await self.get(path, mkey))[0]
        except errors.NotFound:
            return None


def _current(task: Any, target: Target, case: dict[str, Any]) -> dict[str, Any] | None:
    if "tables" in case:
        read: dict[str, Any] | None = asyncio.run(task.read(_Tables(case["tables"]), target))
        return read
    return find_policy(case["table"], target) if "table" in case else case.get("current")


def _load(path: Path) -> dict[str, Any]:
    data = YAML(typ="safe").load(path.read_text())
    assert isinstance(data, dict), path
    return data


@pytest.mark.parametrize("case_file", CASES, ids=[f"{p.parent.name}/{p.stem}" for p in CASES])
def test_task_case(case_file: Path) -> None:
    case = _load(case_file)
    task = REGISTRY[case_file.parent.name]()
    version = FortiOSVersion.parse(str(case["version"])).on_model(str(case.get("model", "")))
    ms = _mail_server(case.get("mail_server", {}))
    expect = case["expect"]
    if expect.get("refused"):
        with pytest.raises(errors.Refused) as refused:
            render_desired(ms, version, rung=case.get("rung"))
        assert expect["refused"] in str(refused.value)
        return
    desired = render_desired(ms, version, rung=case.get("rung"))
    if case.get("desired_overrides"):
        desired[task.name].update(case["desired_overrides"])
    target = Target(ms, case.get("vdom", "root"), version, desired.get(task.name, {}))
    if expect.get("absent"):
        assert task.name not in desired, f"{task.name} must not be managed on this rung"
        return
    if expect.get("error"):
        kind, _, fragment = expect["error"].partition(":")
        with pytest.raises(getattr(errors, kind)) as caught:
            task.diff(target, _current(task, target, case))
        assert fragment.strip() in str(caught.value)
        return
    current = _current(task, target, case)
    diff = task.diff(target, current)
    if "noop_reason" in expect:
        assert diff.changes == ()
        assert diff.noop_reason == expect["noop_reason"]
    else:
        assert diff.noop_reason is None, "a case with changes must not also claim to be a no-op"
        got = [
            {k: v for k, v in c.to_json().items() if k in ("action", "mkey", "path")}
            | {"before": c.before, "after": c.after}
            for c in diff.changes
        ]
        assert got == expect["changes"]
    assert list(diff.warnings) == expect.get("warnings", [])


def test_every_task_and_version_has_cases() -> None:
    """Each task has at least one case per supported FortiOS family."""
    seen: dict[str, set[str]] = {}
    for path in CASES:
        family = FortiOSVersion.parse(str(_load(path)["version"])).family
        seen.setdefault(path.parent.name, set()).add(family)
    for name in REGISTRY:
        assert seen.get(name, set()) >= set(SUPPORTED_FAMILIES), f"{name}: {seen.get(name)}"
