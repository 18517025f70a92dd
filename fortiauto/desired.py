"""The recommended configuration for one mail server, built as data: the plan's desired state.

Second stage of the pipeline (site -> **desired** -> plan -> apply -> verify -> commit | rollback
-> report). ``recommended`` builds the FortiOS CMDB objects each task manages from Fortinet's
fix (email filter profile logging all mail with the proxy feature set, protocol options for
SMTP, a "Protecting SSL Server" SSL/SSH profile with the mail server's own certificate, and the
inbound policy in proxy mode binding them). The per-version differences are named facts of
``FortiOSVersion`` (e.g. ``emailfilter_log_field``), never version checks scattered here.

A site may replace the recommendation with its own template (``templates: DIR`` holding
``desired/<family>.yaml.j2`` or ``desired/recommended.yaml.j2``). Site values never reach such a
template as text: it is rendered with opaque placeholders, parsed, and only then are the
placeholders replaced by the values, so no name (with a newline, ``: ``, `` #`` or the word
``null``) can change the structure of what is sent.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

from fortiauto.errors import InputError
from fortiauto.fortios.version import FortiOSVersion
from fortiauto.site import MailServer

__all__ = [
    "CERT_NAME_PREFIX",
    "FALLBACK_SSL_PROFILE",
    "certificate_name",
    "desired_objects",
    "recommended",
    "templates_dir",
]

CERT_NAME_PREFIX = "fa-"
_CERT_NAME_MAX = 35  # FortiOS 7.x CLI limit for vpn.certificate/local names
FALLBACK_SSL_PROFILE = (
    "certificate-inspection"  # the factory profile the field report says keeps mail flowing
)
# Every mail container of an email filter profile (fortios-objects.md §3); ``other-webmails``
# is a per-version fact.
_MAIL_CONTAINERS = ("smtp", "imap", "pop3", "mapi", "msn-hotmail", "yahoo-mail", "gmail")
_SMTP_PORTS = "25 587"
_SMTPS_PORT = "465"

Objects = dict[str, dict[str, Any]]


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


def _cert_name(ms: MailServer) -> str:
    return certificate_name(ms.name, ms.certificate.fingerprint_sha256 or "0" * 64)


def recommended(ms: MailServer, version: FortiOSVersion, *, rung: str | None = None) -> Objects:
    """Desired objects per task name; ``rung`` ``certificate-inspection`` keeps SSL as it was."""
    objects: Objects = {}
    if rung is None:
        cert = _cert_name(ms)
        objects["certificate"] = {"name": cert}
        objects["ssl_profile"] = {
            "name": ms.ssl_profile,
            "comment": f"fortiauto: Protecting SSL Server for {ms.name}",
            "server-cert-mode": "replace",
            "server-cert": [{"name": cert}] if version.server_cert_is_list else cert,
            "ssl": {"inspect-all": "deep-inspection"},
            "smtps": {"ports": _SMTPS_PORT, "status": "deep-inspection"},
        }
    objects["protocol_options"] = {
        "name": ms.protocol_options,
        "comment": f"fortiauto: SMTP inspection for {ms.name}",
        "smtp": {"ports": _SMTP_PORTS, "status": "enable"},
    }
    containers = _MAIL_CONTAINERS + (("other-webmails",) if version.has_other_webmails else ())
    log = version.emailfilter_log_field
    objects["emailfilter"] = {
        "name": ms.emailfilter_profile,
        "comment": f"fortiauto: log all inbound mail for {ms.name}",
        "feature-set": "proxy",
        "spam-log": "enable",
        **{container: {log: "enable"} for container in containers},
    }
    objects["policy"] = {
        "inspection-mode": "proxy",
        "utm-status": "enable",
        "ssl-ssh-profile": ms.ssl_profile if rung is None else FALLBACK_SSL_PROFILE,
        "emailfilter-profile": ms.emailfilter_profile,
        "profile-protocol-options": ms.protocol_options,
    }
    return objects


def desired_objects(
    ms: MailServer, version: FortiOSVersion, *, rung: str | None = None, templates: Path | None = None
) -> Objects:
    """The site's own template when it has one for this version, else the recommendation."""
    template = _site_template(templates, version)
    if template is None:
        return recommended(ms, version, rung=rung)
    values = {
        _PLACEHOLDER.format(key): value
        for key, value in (
            ("name", ms.name),
            ("emailfilter_profile", ms.emailfilter_profile),
            ("ssl_profile", ms.ssl_profile),
            ("protocol_options", ms.protocol_options),
            ("cert_name", _cert_name(ms)),
        )
    }
    shape = _parsed_template(str(template), template.stat().st_mtime_ns, version, rung)
    return {task: _fill(obj, values) for task, obj in shape.items()}


def _site_template(templates: Path | None, version: FortiOSVersion) -> Path | None:
    if templates is None:
        return None
    folder = templates / "desired"
    for name in (f"{version.family}.yaml.j2", "recommended.yaml.j2"):
        if (folder / name).is_file():
            return folder / name
    return None


_PLACEHOLDER = "fortiauto_value_{}_fortiauto"
_PLACEHOLDER_RE = re.compile(r"fortiauto_value_(\w+?)_fortiauto")


class _OpaqueMailServer:
    """What a site template sees as ``ms``: placeholders, never the values themselves."""

    def __getattr__(self, name: str) -> str:
        return _PLACEHOLDER.format(name)


@cache
def _parsed_template(path: str, _mtime: int, version: FortiOSVersion, rung: str | None) -> Objects:
    """Render with placeholders and parse once per template, version and rung (not per mail server)."""
    folder, name = str(Path(path).parent), Path(path).name
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - renders YAML, not HTML
    )
    try:
        text = environment.get_template(name).render(
            ms=_OpaqueMailServer(), cert_name=_PLACEHOLDER.format("cert_name"), rung=rung, v=version
        )
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader
    except (jinja2.TemplateError, yaml.YAMLError) as exc:
        raise InputError(f"template {path}: {exc}") from exc
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise InputError(f"template {path} did not render a mapping of task name to object")
    return {str(task): obj for task, obj in data.items()}


def _fill(node: Any, values: dict[str, str]) -> Any:
    """Replace placeholders inside parsed strings (keys and values); the structure stays as parsed."""
    if isinstance(node, dict):
        return {_fill(k, values): _fill(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [_fill(v, values) for v in node]
    if isinstance(node, str) and "fortiauto_value_" in node:
        unknown = [m for m in _PLACEHOLDER_RE.findall(node) if _PLACEHOLDER.format(m) not in values]
        if unknown:
            raise InputError(f"template uses ms.{unknown[0]}, which a site template cannot read")
        return _PLACEHOLDER_RE.sub(lambda m: values[m.group(0)], node)
    return node
