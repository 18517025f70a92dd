"""The lab is a package apart: the product works without it and finds it only through entry points."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fortiauto.errors import InputError
from fortiauto.probe.delivery import delivery_for
from fortiauto_lab.delivery import LabDelivery

ROOT = Path(__file__).resolve().parents[3]

# A meta path hook that makes the lab's third-party dependencies look uninstalled.
_BLOCKER = """
import sys
class _Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _Blocker())
"""


def _python(
    code: str, *, blocked: tuple[str, ...] = ("aiohttp", "aiosmtpd")
) -> subprocess.CompletedProcess[str]:
    program = _BLOCKER.format(BLOCKED=set(blocked)) + textwrap.dedent(code)
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-c", program],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_imports_and_helps_without_the_lab_dependencies():
    done = _python(
        """
        import fortiauto.cli
        assert "aiohttp" not in sys.modules and "aiosmtpd" not in sys.modules
        assert not any(m.startswith("fortiauto_lab.server") for m in sys.modules)
        try:
            fortiauto.cli.main(["lab", "up", "--help"])
        except SystemExit as exc:
            print("exit", exc.code)
        """
    )
    assert done.returncode == 0, done.stderr
    assert "exit 0" in done.stdout
    # The help lists every fault and device state, generated from the registry.
    for name in ("banner-hold-on-utm", "http500-on-write=N", "ngfw-policy-based[=VDOM]", "read-only-token"):
        assert name in done.stdout


def test_lab_up_without_its_extra_says_what_to_install(tmp_path):
    done = _python(
        f"""
        import fortiauto.cli
        fortiauto.cli.main(["lab", "up", "--state-dir", {str(tmp_path / "state")!r}])
        """
    )
    assert done.returncode == 2
    assert "pip install 'fortiauto[lab]'" in done.stderr
    assert not (tmp_path / "state").exists()


def test_without_the_plugin_fortiauto_lab_says_install():
    done = _python(
        """
        import importlib.metadata as md
        real = md.entry_points
        md.entry_points = lambda **kw: [] if kw.get("group") == "fortiauto.cli" else real(**kw)
        import fortiauto.cli
        fortiauto.cli.main(["lab", "up"])
        """,
        blocked=(),
    )
    assert done.returncode == 2
    assert "fortiauto lab" in done.stderr
    assert "fortiauto[lab]" in done.stderr


def test_delivery_confirmers_come_from_entry_points():
    assert isinstance(delivery_for("lab"), LabDelivery)
    with pytest.raises(InputError, match="no delivery confirmer 'carrier-pigeon'"):
        delivery_for("carrier-pigeon")


def _imports(package: Path) -> set[str]:
    found: set[str] = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module)
    return found


def test_neither_package_imports_the_other_and_the_product_knows_no_lab_path():
    lab = _imports(ROOT / "fortiauto_lab")
    assert not {m for m in lab if m == "fortiauto" or m.startswith("fortiauto.")}
    product = _imports(ROOT / "fortiauto")
    assert not {m for m in product if m.startswith("fortiauto_lab")}
    holders = [
        p
        for p in (ROOT / "fortiauto").rglob("*")
        if p.is_file() and "/__lab__" in p.read_text(errors="replace")
    ]
    assert holders == []


def test_no_lab_function_is_rated_d_or_worse():
    radon = Path(sys.executable).with_name("radon")
    if not radon.exists():
        pytest.skip("radon is not installed (pip install -e '.[dev]')")
    done = subprocess.run(
        [str(radon), "cc", "-n", "D", "fortiauto_lab"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == ""
