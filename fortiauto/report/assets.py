"""Where the report templates live, and the one Jinja2 environment the Markdown and HTML reports use.

In an installed wheel the templates are package data (``fortiauto/templates/reports``, see
pyproject's force-include); in a source checkout they are the repository's ``templates/reports``.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

import fortiauto
from fortiauto.report.safe import visible

__all__ = ["report_environment", "reports_dir"]


def reports_dir() -> Path:
    """The wheel's copy of the report templates, else the source tree's."""
    package = Path(fortiauto.__file__).resolve().parent
    packaged = package / "templates" / "reports"
    return packaged if packaged.is_dir() else package.parent / "templates" / "reports"


def report_environment(*, html: bool) -> jinja2.Environment:
    """Strict (an unknown name is an error); autoescaped for HTML, where every value is text."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(reports_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=html,  # noqa: S701 - Markdown escapes with safe.md_text/md_cell instead
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # HTML collapses newlines by itself; controls and bidi overrides must still show as escapes.
        finalize=visible if html else None,
    )
