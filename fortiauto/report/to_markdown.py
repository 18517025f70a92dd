"""The change record a change board files: rendered with Jinja2 from ``templates/reports/``."""

from __future__ import annotations

import getpass
import socket

import jinja2

from fortiauto.render import templates_dir
from fortiauto.report.console import render_plan
from fortiauto.report.probe_text import render_probe
from fortiauto.report.to_fortios_cli import plan_to_cli, rollback_to_cli
from fortiauto.results import RunResult

__all__ = ["run_to_markdown"]


def _operator() -> str:
    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except (OSError, KeyError):
        return "unknown"


def run_to_markdown(run: RunResult, *, window: str | None = None, operator: str | None = None) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir() / "reports")),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - Markdown, not HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    counts: dict[str, int] = {}
    for device in run.devices:
        counts[device.status] = counts.get(device.status, 0) + 1
    return env.get_template("change-record.md.j2").render(
        run=run,
        counts=counts,
        window=window or run.window,
        operator=operator or _operator(),
        render_plan=render_plan,
        render_probe=render_probe,
        plan_to_cli=plan_to_cli,
        rollback_to_cli=rollback_to_cli,
    )
