"""End to end through the CLI: ``fortiauto lab up --backend <real Postfix>`` + a hand-written site
file whose only delivery confirmation is an IMAP mailbox on a real Dovecot.

``blackhole-after-data`` (the device says 250 after the dot and never relays the message) must end
rolled back, exit 3, failure class F17 — with nothing lab-only in the site file. Without the
fault the same site applies (exit 0) and the probe's message is gone from the mailbox afterwards.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.clikit import FORTIAUTO, cli_env, lab_up, run_cli, stop_process
from tests.integration.engine.labkit import Control
from tests.integration.mailpath.mailkit import Dovecot, MailStore, Postfix

pytestmark = pytest.mark.timeout(300)

SITE = """\
# Written by hand: an inbound mail server behind a FortiGate, delivery proven by IMAP.
version: 1
defaults:
  vdom: root
  verify_tls: ca.pem
  timeout: 10
devices:
  - name: {name}
    url: {url}
    token: ${{file:tokens/{name}.token}}
    mail_servers:
      - name: mx1
        policy: {{vip: vip-mx1}}
        certificate: {{cert: certs/mx1.pem, key: certs/mx1.key}}
        emailfilter_profile: mail-inbound
        ssl_profile: protect-mx1
        protocol_options: smtp-inbound
        probe:
          host: 127.0.0.1
          port: {port}
          mode: starttls
          server_name: mx1.example.test
          timeout: 5
          retries: 2
          retry_delay: 0.5
          transaction: {{mail_from: probe@example.test, rcpt_to: postmaster@example.test}}
          confirm_delivery:
            imap:
              url: {imap_url}
              username: {imap_user}
              password: ${{env:PROBE_IMAP_PASSWORD}}
              mailbox: INBOX
              timeout: 8
              verify_tls: imap-ca.pem
"""


class LabProcess:
    def __init__(self, proc: subprocess.Popen[str], state_dir: Path) -> None:
        self.proc = proc
        self.state_dir = state_dir
        self.info: dict[str, Any] = json.loads((state_dir / "lab.json").read_text())


def _lab_up(state_dir: Path, *args: str) -> LabProcess:
    return LabProcess(lab_up(state_dir, *args), state_dir)


@pytest.fixture
def lab_behind_postfix(tmp_path: Path, mta: Postfix, request: pytest.FixtureRequest) -> Iterator[LabProcess]:
    faults: str | None = getattr(request, "param", None)
    extra = ["--faults", faults] if faults else []
    lab = _lab_up(tmp_path / "lab", "--backend", f"127.0.0.1:{mta.port}", *extra)
    try:
        yield lab
    finally:
        stop_process(lab.proc)


def _site(lab: LabProcess, imap: Dovecot) -> Path:
    device = lab.info["devices"][0]
    port = next(s["port"] for s in device["smtp"] if s["vip"] == "vip-mx1" and s["mode"] == "starttls")
    (lab.state_dir / "imap-ca.pem").write_text(imap.tls.ca_path.read_text())
    path = lab.state_dir / "site-imap.yml"
    path.write_text(
        SITE.format(
            name=device["name"],
            url=device["url"],
            port=port,
            imap_url=imap.url(),
            imap_user=imap.username,
        )
    )
    return path


def _apply(site: Path, imap: Dovecot, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    journal = str(tmp_path / "journal")
    return _fortiauto(imap, "apply", str(site), "--yes", "--output", "json", "--journal-dir", journal)


def _fortiauto(imap: Dovecot, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FORTIAUTO, *args],
        env=cli_env(PROBE_IMAP_PASSWORD=imap.password),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def _state(lab: LabProcess) -> bytes:
    control = Control(lab.info["devices"][0], str(lab.state_dir / "ca.pem"))
    try:
        return control.state()
    finally:
        control.close()


@pytest.mark.parametrize("lab_behind_postfix", ["fgt-001:blackhole-after-data"], indirect=True)
def test_blackhole_with_imap_confirmation_rolls_back_f17(
    lab_behind_postfix: LabProcess, imap_server: Dovecot, mta: Postfix, store: MailStore, tmp_path: Path
) -> None:
    lab = lab_behind_postfix
    site = _site(lab, imap_server)
    assert "lab" not in site.read_text().split("confirm_delivery:")[1]
    before = _state(lab)
    # Without the password's variable the site is bad input; with it, valid.
    missing = run_cli("validate", site)
    assert missing.returncode == 2
    assert "PROBE_IMAP_PASSWORD" in missing.stderr
    assert _fortiauto(imap_server, "validate", str(site)).returncode == 0

    done = _apply(site, imap_server, tmp_path)

    assert done.returncode == 3, done.stdout + done.stderr
    payload = json.loads(done.stdout)
    device = payload["devices"][0]
    assert device["status"] == "rolled_back"
    assert device["probe"]["failure_class"] == "F17 not-delivered"
    assert _state(lab) == before, "the device is back in its pre-change state"
    # Behind fortiauto's back: Dovecot was asked (one login for the after-change check) and
    # Postfix really delivered the baseline probe but never saw the blackholed one.
    assert imap_server.logins() >= 1
    assert "delivered to maildir" in mta.log_text()
    lost = device["probe"]["message_id"]
    assert lost
    assert f"message-id={lost}" not in mta.log_text(), "the device swallowed it; Postfix never got the DATA"
    assert store.holding(lost) == []
    for secret in (imap_server.password,):
        assert secret not in done.stdout + done.stderr


def test_healthy_path_with_imap_confirmation_applies_and_cleans_up(
    lab_behind_postfix: LabProcess, imap_server: Dovecot, mta: Postfix, store: MailStore, tmp_path: Path
) -> None:
    site = _site(lab_behind_postfix, imap_server)

    journal = str(tmp_path / "journal")
    # --debug: the verbose log must not carry the IMAP password either.
    done = _fortiauto(
        imap_server, "--debug", "apply", str(site), "--yes", "--output", "json", "--journal-dir", journal
    )

    assert done.returncode == 0, done.stdout + done.stderr
    payload = json.loads(done.stdout)
    device = payload["devices"][0]
    assert device["status"] == "changed"
    after_id = device["probe"].get("message_id")
    assert after_id, device["probe"]
    assert mta.delivered(after_id), "Postfix queued and delivered the after-change probe"
    assert store.holding(after_id) == [], "the confirmed probe message was deleted from the mailbox"
    assert "delivery check: found in INBOX" in done.stderr
    assert imap_server.password not in done.stdout + done.stderr
    journal_text = "".join(path.read_text() for path in Path(journal).rglob("*") if path.is_file())
    assert imap_server.password not in journal_text
