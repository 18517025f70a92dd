"""The README's and docs/design.md's exit-code tables say exactly what the outcome table does."""

from __future__ import annotations

import re
from pathlib import Path

import fortiauto
from fortiauto.transaction.outcome import _TABLE, SEVERITY, Ending

ROOT = Path(fortiauto.__file__).parent.parent


def _rows(text: str, header: str) -> list[list[str]]:
    lines = text[text.index(header) :].splitlines()[2:]
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_the_readme_lists_each_exit_code_with_exactly_its_statuses():
    rows = _rows((ROOT / "README.md").read_text(), "| code | meaning | device statuses |")
    documented = {int(code): {s.strip() for s in statuses.split(",")} for code, _, statuses in rows}
    actual: dict[int, set[str]] = {}
    for status, code in _TABLE.values():
        actual.setdefault(code, set()).add(status)
    assert documented == actual
    assert sorted(documented) == sorted(SEVERITY)


def test_the_design_doc_lists_every_ending_as_the_code_does():
    rows = _rows((ROOT / "docs" / "design.md").read_text(), "| ending | status | code | meaning |")
    documented = {ending: (status, int(code)) for ending, status, code, _ in rows}
    assert documented == {ending.value: _TABLE[ending] for ending in Ending}


def test_the_order_of_urgency_is_written_as_the_code_applies_it():
    order = " > ".join(str(code) for code in SEVERITY)
    for doc in ("README.md", "docs/design.md"):
        assert order in (ROOT / doc).read_text(), doc


def test_no_doc_or_code_points_outside_the_repository():
    pattern = re.compile(r"\.\./shared|shared/reference|DESIGN\.md")
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("fortiauto", "fortiauto_lab", "docs", "playbooks", "templates")
        for path in (ROOT / folder).rglob("*")
        if path.is_file()
        and path.suffix in (".py", ".md", ".j2", ".yml", ".yaml")
        and "reference" not in path.parts
        and pattern.search(path.read_text(errors="replace"))
    ] + [name for name in ("README.md",) if pattern.search((ROOT / name).read_text())]
    assert offenders == []
