"""Reporters and report files: console, JSON, JUnit XML, Markdown change record, HTML, FortiOS CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

from fortiauto.results import RunResult

__all__ = ["write_reports"]


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def write_reports(run: RunResult, directory: Path, *, journal_dir: Path | None = None) -> list[Path]:
    """Write the run's reports (0600 files; a directory fortiauto creates is 0700); returns their paths.

    ``journal_dir`` goes into the back-out command, so it works from any directory.
    """
    from fortiauto.report.to_html import run_to_html  # noqa: PLC0415
    from fortiauto.report.to_junit import run_to_junit  # noqa: PLC0415
    from fortiauto.report.to_markdown import run_to_markdown  # noqa: PLC0415

    journal = None if journal_dir is None else str(journal_dir.resolve())
    if not directory.is_dir():  # a directory that exists keeps its mode: it may be shared (1777)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    outputs = {
        f"{run.run_id}.json": json.dumps(run.to_json(), indent=2, sort_keys=True) + "\n",
        f"{run.run_id}.junit.xml": run_to_junit(run),
        f"{run.run_id}.md": run_to_markdown(run, journal_dir=journal),
        f"{run.run_id}.html": run_to_html(run, journal_dir=journal),
    }
    paths = []
    for name, text in outputs.items():
        path = directory / name
        _write_private(path, text)
        paths.append(path)
    return paths
