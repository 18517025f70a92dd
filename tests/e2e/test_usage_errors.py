"""Usage errors print click's own message and exit 2 (never "unexpected ... (a bug)", never a traceback)."""

from __future__ import annotations

import pytest

from tests.e2e.clikit import assert_no_traceback, run_cli

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("aply",), "No such command 'aply'"),
        (("apply",), "Missing argument 'SITE'"),
        (("apply", "site.yml", "--debug"), "No such option: --debug"),
        (("plan", "site.yml", "-o", "yaml"), "'yaml' is not one of"),
        (("rollback", "--run", "x", "--last"), "give exactly one of --run ID or --last"),
    ],
)
def test_a_usage_error_exits_2_with_its_reason(tmp_path, args, says):
    done = run_cli(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr
    assert "a bug" not in done.stderr
    assert_no_traceback(done.stdout, done.stderr)
