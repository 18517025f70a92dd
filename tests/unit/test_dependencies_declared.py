"""Every package fortiauto/ and fortiauto_lab/ import directly is declared in pyproject.toml.

A package that only arrives through another one's dependencies (click through typer, multidict
through aiohttp, pydantic_core through pydantic) breaks the day that one stops bringing it. The
imports are read from the source (``ast``), mapped to their distributions with
``importlib.metadata.packages_distributions`` and compared with ``[project].dependencies``
(plus the ``lab`` extra for ``fortiauto_lab``).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OWN = {"fortiauto", "fortiauto_lab"}


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503


def _declared(*groups: str) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for group in groups:
        requirements += project["optional-dependencies"][group]
    return {_normalised(re.match(r"[A-Za-z0-9._-]+", r).group()) for r in requirements}  # type: ignore[union-attr]


def _imported(package: str) -> dict[str, str]:
    """Top-level module -> the first file that imports it (absolute imports only)."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in OWN and top != "__future__":
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def _undeclared(package: str, declared: set[str]) -> list[str]:
    owners = packages_distributions()
    missing = []
    for module, where in _imported(package).items():
        distributions = {_normalised(d) for d in owners.get(module, [module])}
        if not distributions & declared:
            missing.append(f"{module} (distribution {', '.join(sorted(distributions))}; imported by {where})")
    return missing


def test_the_product_declares_every_package_it_imports():
    assert _undeclared("fortiauto", _declared()) == []


def test_the_lab_declares_every_package_it_imports():
    assert _undeclared("fortiauto_lab", _declared("lab")) == []
