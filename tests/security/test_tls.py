"""TLS verification is on by default; turning it off works but is never silent.

The lab's HTTPS certificates come from its own CA. A site that does not give that CA (the system
store via ``verify_tls: true``, or another CA bundle) must be refused before anything is sent,
with one line that names ``verify_tls``; ``verify_tls: false`` must work and warn on every
command that connects or reads the site. ~6 s.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.chaoskit import Cli, cli_env, run_cli
from tests.security.conftest import Canaries, SecLab, site_variant

FIXTURE_CA = Path(__file__).parents[1] / "fixtures" / "certs" / "ca.pem"
_NOT_THE_LAB_CA = {"system-store": True, "other-ca": str(FIXTURE_CA)}


def _refusals(lab: SecLab, canaries: Canaries, tmp_path: Path, verify: bool | str) -> list[Cli]:
    site = site_variant(lab, "wrong-ca", auth="token", canaries=canaries, verify_tls=verify)
    env = cli_env(tmp_path / "journal", MX1_KEY_PASSPHRASE=canaries.values["passphrase"])
    return [run_cli(*args, env=env) for args in (("plan", str(site)), ("apply", str(site), "--yes"))]


@pytest.mark.parametrize("verify", list(_NOT_THE_LAB_CA.values()), ids=list(_NOT_THE_LAB_CA))
def test_unverified_device_is_refused_naming_verify_tls(
    sec_lab: SecLab, canaries: Canaries, tmp_path: Path, verify: bool | str
) -> None:
    sec_lab.control.reset()
    pristine = sec_lab.control.state()
    for result in _refusals(sec_lab, canaries, tmp_path, verify):
        lines = (result.stdout + result.stderr).splitlines()
        assert any(
            "verify_tls" in line and ("TLS" in line or "certificate verify" in line) for line in lines
        ), result
        assert result.code != 0, result
    assert sec_lab.control.requests()["total"] == 0  # refused in the handshake: no request reached the API
    assert sec_lab.control.state() == pristine


def test_unverified_device_exit_code_is_input_error(
    sec_lab: SecLab, canaries: Canaries, tmp_path: Path
) -> None:
    codes = [r.code for r in _refusals(sec_lab, canaries, tmp_path, True)]
    assert codes == [2, 2]


_VERIFY_OFF_COMMANDS = [
    "validate",
    "plan",
    "apply",
    "probe",
    "rollback",
]


@pytest.fixture(scope="module")
def verify_off_runs(
    sec_lab: SecLab, canaries: Canaries, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Cli]:
    """validate, plan, apply, probe and rollback of a site with ``verify_tls: false``, once each."""
    sec_lab.control.reset()
    site = site_variant(sec_lab, "verify-off", auth="token", canaries=canaries, verify_tls=False)
    env = cli_env(tmp_path_factory.mktemp("verify-off"), MX1_KEY_PASSPHRASE=canaries.values["passphrase"])
    runs = {
        "validate": run_cli("validate", str(site), env=env),
        "plan": run_cli("plan", str(site), env=env),
        "apply": run_cli("apply", str(site), "--yes", env=env),
        "probe": run_cli("probe", str(site), env=env),
        "rollback": run_cli("rollback", "--yes", "--last", env=env),
    }
    for result in runs.values():
        assert result.code == 0, result  # it works: the lab is reached without verification
    return runs


@pytest.mark.parametrize("command", _VERIFY_OFF_COMMANDS)
def test_verify_off_works_but_warns_every_time(verify_off_runs: dict[str, Cli], command: str) -> None:
    result = verify_off_runs[command]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert any("verify_tls" in line and "TLS verification is off" in line for line in warnings), result
