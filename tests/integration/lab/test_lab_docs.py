"""docs/lab.md carries the fault registry as generated: a new fault without docs fails here."""

from __future__ import annotations

import re
from pathlib import Path

from fortiauto_lab.cli import faults_markdown

DOC = Path(__file__).resolve().parents[3] / "docs" / "lab.md"


def test_fault_table_in_docs_is_generated_from_the_registry():
    found = re.search(r"<!-- faults:begin[^>]*-->\n(.*?)\n<!-- faults:end -->", DOC.read_text(), re.S)
    assert found is not None
    expected = faults_markdown()
    assert found.group(1) == expected, (
        "regenerate with: python -c 'from fortiauto_lab.cli import faults_markdown; print(faults_markdown())'"
    )
