"""Render the desired state: Jinja2 templates (StrictUndefined) + site vars -> plain FortiOS object dicts.

Second stage of the pipeline: for one mail server on one FortiOS release, the template of that
release's family (``templates/desired/<family>.yaml.j2``) yields the objects each task manages,
keyed by task name. Templates ship inside the wheel (``fortiauto/templates``); a site may point
``templates:`` at its own copy. No I/O beyond reading the template.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from ruamel.yaml import YAML

from fortiauto.errors import InputError
from fortiauto.fortios.version import FortiOSVersion
from fortiauto.site import MailServer

__all__ = ["CERT_NAME_PREFIX", "certificate_name", "render_desired", "templates_dir"]

CERT_NAME_PREFIX = "fa-"
_CERT_NAME_MAX = 35  # FortiOS 7.x CLI limit for vpn.certificate/local names


def templates_dir(override: Path | None = None) -> Path:
    """The site's ``templates:`` folder, else the copy in the wheel, else the source tree's."""
    if override is not None:
        return override
    packaged = Path(__file__).parent / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "templates"


def certificate_name(mail_server: str, fingerprint_sha256: str) -> str:
    """``fa-<mail server>-<sha256[:8]>``: unique per certificate, recognisably fortiauto's own."""
    suffix = f"-{fingerprint_sha256[:8]}"
    stem = re.sub(r"[^A-Za-z0-9_.-]", "-", mail_server)
    stem = stem[: _CERT_NAME_MAX - len(CERT_NAME_PREFIX) - len(suffix)]
    return f"{CERT_NAME_PREFIX}{stem}{suffix}"


@cache
def _environment(folder: str) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - renders YAML, not HTML
    )


def render_desired(
    mail_server: MailServer,
    version: FortiOSVersion,
    *,
    rung: str | None = None,
    templates: Path | None = None,
) -> dict[str, dict[str, Any]]:
    """Desired objects per task name (``certificate``, ``ssl_profile``, ``emailfilter`` ...)."""
    folder = templates_dir(templates) / "desired"
    name = f"{version.family}.yaml.j2"
    if not (folder / name).is_file():
        raise InputError(f"no desired-state template {name} in {folder}")
    fingerprint = mail_server.certificate.fingerprint_sha256 or hashlib.sha256(b"").hexdigest()
    try:
        text = (
            _environment(str(folder))
            .get_template(name)
            .render(
                ms=mail_server,
                cert_name=certificate_name(mail_server.name, fingerprint),
                rung=rung,
                v=version,
            )
        )
    except jinja2.TemplateError as exc:
        raise InputError(f"template {folder / name}: {exc}") from exc
    data = YAML(typ="safe").load(text)
    if not isinstance(data, dict):
        raise InputError(f"template {folder / name} did not render a mapping of objects")
    return {str(k): dict(v) for k, v in data.items()}
