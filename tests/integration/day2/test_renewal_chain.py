"""A renewal signed by another CA: the chain the VIP presents is verified before the old one goes.

Through the real ``fortiauto`` command on FortiOS 6.4 and 7.2, as a daily timer runs it. mx1 is
deployed with the lab CA's certificate; the site then names a renewal by a new CA (leaf and its
intermediate, a fullchain), with the site's CA bundle (``probe.verify_chain: PATH``) or, when
the site says nothing, the system trust store, here a stand-in file named by ``SSL_CERT_FILE``
(the machine's own store is never touched):

- the new root trusted: the intermediate is imported, the rotation commits, the old certificate
  is retired (exit 0), and the next run writes nothing;
- not trusted (the anchors hold the old CA only): rolled back (exit 3), the lab's state byte for
  byte as before, and the console says why;
- an explicit ``verify_chain: false``: honoured, the console warns that the chain is not verified;
- a renewal by the same CA: no chain check is forced (the stand-in store does not know the lab
  CA, and the rotation still commits).

The lab runs in this process (a thread), the CLI as a subprocess. Runtime: about 40 s.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from fortiauto.journal import read_journal
from tests.e2e.clikit import CLI_TIMEOUT, FORTIAUTO, cli_env
from tests.fixtures.make_certs import new_ca
from tests.integration.day2.daykit import (
    FAST,
    derived_name,
    renewed_by_another_ca,
    renewed_certificate,
    site_copy,
    trust_bundle,
)
from tests.integration.engine.labkit import apply

VERSIONS = ["6.4", "7.2"]
ANCHORS = ["bundle", "system"]


def _cli(*args: str | Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FORTIAUTO, *map(str, args)],
        env=cli_env(**env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )


def _names(control: Any, path: str) -> set[str]:
    response = control.http.get(f"/api/v2/cmdb/{path}")
    response.raise_for_status()
    return {str(c["name"]) for c in response.json()["results"]}


def _certificates(control: Any) -> set[str]:
    return {name for name in _names(control, "vpn.certificate/local") if name.startswith("fa-")}


def _bound(control: Any) -> list[str]:
    response = control.http.get("/api/v2/cmdb/firewall/ssl-ssh-profile/protect-mx1")
    response.raise_for_status()
    value = response.json()["results"][0]["server-cert"]
    return [value] if isinstance(value, str) else [c["name"] for c in value]


def _deleted(journal_dir: Path) -> list[str]:
    return [
        str(e["change"]["mkey"])
        for journal in journal_dir.glob("*.jsonl")
        for e in read_journal(journal)
        if e.get("type") == "pre" and e["change"]["action"] == "delete"
    ]


class Renewal:
    """mx1 deployed with the lab CA's certificate, and a site naming a renewal by another CA."""

    def __init__(self, lab: Any, tmp_path: Path, anchors: str, *, trusted: bool) -> None:
        self.state_dir = lab.site.parent
        self.journal = tmp_path / "j"
        stem = f"mx1-newca-{tmp_path.name}"
        self.cert, new_root = renewed_by_another_ca(self.state_dir, stem)
        old_root = self.state_dir / "ca.pem"
        self.bundle = trust_bundle(tmp_path / "anchors.pem", old_root, *([new_root] if trusted else []))
        probe: dict[str, Any] = {**FAST}
        self.env: dict[str, str] = {}
        if anchors == "bundle":
            probe["verify_chain"] = str(self.bundle)
        else:
            self.env["SSL_CERT_FILE"] = str(self.bundle)
        self.site = site_copy(
            lab.site, stem, mail_server={"certificate": self.cert, "probe": probe, "fallback": None}
        )
        self.old = derived_name(self.state_dir, "certs/mx1.pem")
        self.new = derived_name(self.state_dir, self.cert["cert"])

    @property
    def against(self) -> str:
        if "SSL_CERT_FILE" in self.env:
            return f"against the system trust store ({self.bundle})"
        return f"against the CA bundle {self.bundle}"

    def apply(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return _cli("apply", self.site, "--yes", "--journal-dir", self.journal, *extra, env=self.env)


async def _deployed(lab: Any, tmp_path: Path) -> None:
    first = await apply(lab.site, tmp_path / "j")
    assert first.devices[0].status == "changed", first.devices[0].reason


@pytest.mark.parametrize("anchors", ANCHORS)
@pytest.mark.parametrize("version", VERSIONS)
async def test_a_renewal_by_a_trusted_new_ca_commits_and_retires_the_old_certificate(
    lab_factory, tmp_path, version, anchors
):
    lab = lab_factory(version)
    control = lab.control()
    await _deployed(lab, tmp_path)
    renewal = Renewal(lab, tmp_path, anchors, trusted=True)
    cas_before = _names(control, "vpn.certificate/ca")

    done = renewal.apply()
    console = done.stdout + done.stderr
    assert done.returncode == 0, console
    assert "the renewed certificate's issuer changed" in console  # the plan says what it will check
    assert "is verified against" in console
    assert _certificates(control) == {renewal.new}
    assert _bound(control) == [renewal.new]
    assert len(_names(control, "vpn.certificate/ca") - cas_before) == 1  # the new intermediate
    assert renewal.old in _deleted(renewal.journal)

    again = renewal.apply("--output", "json")
    assert again.returncode == 0, again.stderr
    device = json.loads(again.stdout)["devices"][0]
    assert device["status"] == "unchanged", device["reason"]
    assert device["requests"]["writes"] == 0
    assert device["probe"]["passed"] is True


@pytest.mark.parametrize("anchors", ANCHORS)
@pytest.mark.parametrize("version", VERSIONS)
async def test_a_renewal_by_an_untrusted_ca_is_rolled_back_byte_for_byte(
    lab_factory, tmp_path, version, anchors
):
    lab = lab_factory(version)
    control = lab.control()
    await _deployed(lab, tmp_path)
    renewal = Renewal(lab, tmp_path, anchors, trusted=False)
    before = control.state()

    done = renewal.apply()
    console = done.stdout + done.stderr
    assert done.returncode == 3, console
    assert "F11 chain-untrusted" in console
    assert f"the renewed certificate's chain does not verify {renewal.against}: " in console
    assert control.state() == before  # old binding back, the new leaf and intermediate gone
    assert _bound(control) == [renewal.old]
    assert _certificates(control) == {renewal.old}
    assert renewal.old not in _deleted(renewal.journal)  # nothing retired


@pytest.mark.parametrize("version", VERSIONS)
async def test_an_explicit_verify_chain_false_is_honoured_with_a_warning(lab_factory, tmp_path, version):
    lab = lab_factory(version)
    control = lab.control()
    await _deployed(lab, tmp_path)
    renewal = Renewal(lab, tmp_path, "system", trusted=False)
    site = site_copy(renewal.site, f"opt-out-{tmp_path.name}", mail_server={"probe": {"verify_chain": False}})

    done = _cli("apply", site, "--yes", "--journal-dir", renewal.journal, env=renewal.env)
    console = done.stdout + done.stderr
    assert done.returncode == 0, console
    assert "the site sets verify_chain: false: the chain the VIP presents is not verified" in console
    assert _bound(control) == [renewal.new]
    assert _certificates(control) == {renewal.new}


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_renewal_by_the_same_ca_forces_no_chain_check(lab_factory, tmp_path, version):
    lab = lab_factory(version)
    control = lab.control()
    await _deployed(lab, tmp_path)
    state_dir = lab.site.parent
    renewed = renewed_certificate(state_dir, f"mx1-same-ca-{tmp_path.name}")
    site = site_copy(lab.site, f"same-ca-{tmp_path.name}", mail_server={"certificate": renewed})
    # A stand-in system store that does not know the lab CA: a forced check would fail on it.
    unrelated = tmp_path / "unrelated.pem"
    new_ca().cert_pem.write_to_path(str(unrelated))

    done = _cli(
        "apply", site, "--yes", "--journal-dir", tmp_path / "j", env={"SSL_CERT_FILE": str(unrelated)}
    )
    console = done.stdout + done.stderr
    assert done.returncode == 0, console
    assert "issuer changed" not in console
    assert _bound(control) == [derived_name(state_dir, renewed["cert"])]
    assert _certificates(control) == {derived_name(state_dir, renewed["cert"])}
