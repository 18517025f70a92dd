"""Why the probe must come from outside: an inside probe passes while inbound mail is broken.

A lab unit with the ``hairpin`` state (only 127.0.0.2 is the Internet; every other source is an
inside host matching the hairpin policy) and ``banner-hold-on-utm`` (once the inbound policy
inspects with UTM, the server's banner is never released: the field report's failure). Run from
inside, fortiauto sees mail flow through the hairpin policy and cannot roll back: the most it can
say is that the effect is unproven, since the probe's message was not logged by the inbound
policy. With ``probe.via`` through a host outside (a SOCKS5 stand-in whose connections leave
from 127.0.0.2), the probe takes the inbound path, fails, and the change is undone.
"""

from __future__ import annotations

import json
import smtplib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.e2e.clikit import FAST_FAILING_PROBE, Fleet, assert_no_traceback, lab_running, run_cli
from tests.standins.outside_host import OutsideHost

pytestmark = pytest.mark.e2e

OUTSIDE = "127.0.0.2"
STATES = f"hairpin={OUTSIDE},banner-hold-on-utm"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    state_dir = tmp_path_factory.mktemp("hairpin") / "lab"
    with lab_running(state_dir, "--devices", "1", "--faults", f"fgt-001:{STATES}") as fleet:
        yield fleet


def _site(lab: Fleet, name: str, **probe: Any) -> Path:
    yaml = YAML()
    data = yaml.load(lab.site.read_text())
    for server in data["devices"][0]["mail_servers"]:
        # Two policies now accept mail to the VIP (inbound and hairpin): name the inbound one.
        server["policy"] = {"name": "inbound-smtp"}
        server["probe"].update(FAST_FAILING_PROBE, **probe)
        server.pop("fallback", None)
    out = lab.site.with_name(f"site-{name}.yml")
    with out.open("w") as handle:
        yaml.dump(data, handle)
    return out


def _apply(site: Path, journal: Path) -> tuple[int, dict[str, Any], str]:
    done = run_cli("apply", site, "--yes", "--output", "json", "--journal-dir", journal)
    assert_no_traceback(done.stderr)
    payload = json.loads(done.stdout)
    return done.returncode, payload["devices"][0], done.stderr


def _vip_port(lab: Fleet) -> int:
    smtp = lab.info["devices"][0]["smtp"]
    return next(s["port"] for s in smtp if s["vip"] == "vip-mx1" and s["mode"] == "starttls")


def _banner_from(lab: Fleet, source: str) -> bool:
    """Whether a sender at ``source`` gets the mail server's banner through the VIP."""
    try:
        with smtplib.SMTP(timeout=3, source_address=(source, 0)) as client:
            return client.connect("127.0.0.1", _vip_port(lab))[0] == 220
    except (smtplib.SMTPServerDisconnected, TimeoutError, ConnectionError):
        return False


def _fresh(lab: Fleet) -> dict[str, bytes]:
    lab.reset()
    lab.faults({"fgt-001": STATES})
    assert _banner_from(lab, OUTSIDE)  # before the change both sides get the banner
    assert _banner_from(lab, "127.0.0.1")
    return lab.states()


def test_an_inside_probe_passes_while_inbound_mail_is_broken(lab, tmp_path):
    _fresh(lab)
    code, device, _ = _apply(_site(lab, "inside"), tmp_path / "j")

    # The change stays: every probe fortiauto made (from inside) passed ...
    assert (code, device["status"], device["effect"]) == (6, "unproven", "not_logged"), device["reason"]
    assert device["probe"]["passed"]
    # ... and only the missing log line from the inbound policy shows something is off.
    assert "not in the email filter log" in device["reason"]
    # What the Internet sees now: no banner. Mail is broken and fortiauto could not tell.
    assert not _banner_from(lab, OUTSIDE)
    assert _banner_from(lab, "127.0.0.1")


def test_a_probe_from_outside_catches_it_and_the_change_is_undone(lab, tmp_path):
    before = _fresh(lab)
    with OutsideHost(source=OUTSIDE) as host:
        code, device, stderr = _apply(_site(lab, "outside", via={"socks5": host.address}), tmp_path / "j")
        relayed = list(host.connections)

    assert (code, device["status"]) == (3, "rolled_back"), device["reason"]
    assert device["failure"]["failure_class"].startswith("F4")  # the held banner
    assert device["probe"]["vantage"] == f"socks5 {host.address}"
    # Every probe went out through the outside host (baseline, after, confirm), from its address.
    assert len(relayed) >= 3
    assert {(target, source) for target, _, source in relayed} == {("127.0.0.1", OUTSIDE)}
    assert lab.states() == before  # undone byte for byte
    assert _banner_from(lab, OUTSIDE)
    assert "after probe FAILED F4" in stderr
    assert "rolled_back - probe failed after change" in stderr
