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

import hashlib
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from fortiauto.errors import InputError, PlanError, Refused
from fortiauto.fortios.version import FortiOSVersion
from fortiauto.site import MailServer
from fortiauto.site.models import DEFAULT_SPAM_CHECKS as _DEFAULT_SPAM_CHECKS

__all__ = [
    "CERT_NAME_PREFIX",
    "DEFAULT_SPAM_CHECKS",
    "FALLBACK_SSL_PROFILE",
    "ON_CREATE",
    "PROFILE_GROUP_MEMBERS",
    "ca_certificate_name",
    "certificate_name",
    "desired_objects",
    "intermediates",
    "merge_shared",
    "recommended",
    "require_takes_fix",
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
# Keys a task sends only when it creates the object (never onto an existing profile of the site's).
ON_CREATE = "on-create"
# The policy's profiles that a profile group carries instead when the policy has ``profile-type
# group`` (field names of ``firewall profile-group`` in Fortinet's schema as shipped in
# fortinet.fortios 2.4.2, module fortios_firewall_profile_group: 6.4 to 7.6 alike).
PROFILE_GROUP_MEMBERS = ("emailfilter-profile", "ssl-ssh-profile", "profile-protocol-options")
# The checks a created email filter profile performs unless the mail server's ``spam_checks``
# says otherwise: FortiGuard IP reputation, URLs in the body, message checksum (FortiOS
# ``emailfilter profile`` ``options``); the SMTP action is ``tag``, never discard.
DEFAULT_SPAM_CHECKS = _DEFAULT_SPAM_CHECKS

Objects = dict[str, dict[str, Any]]


def templates_dir(override: Path | None = None) -> Path:
    """The site's ``templates:`` folder, else the copy in the wheel, else the source tree's."""
    if override is not None:
        return override
    packaged = Path(__file__).parent / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "templates"


def intermediates(cert_pem: str) -> list[str]:
    """The CA certificates after the leaf in a certificate file (its chain), each as PEM text.

    FortiOS presents in replace mode the imported local certificate plus the CA certificates on
    the unit that chain it (Fortinet KB "including the intermediate CA in the SSL chain"), so
    each intermediate must be there as a CA certificate; a self-signed root is left out (a
    server need not send it, RFC 8446 4.4.2).
    """
    try:
        certs = x509.load_pem_x509_certificates(cert_pem.encode())
    except ValueError:
        return []
    return [c.public_bytes(serialization.Encoding.PEM).decode() for c in certs[1:] if c.subject != c.issuer]


def ca_certificate_name(pem: str) -> str:
    """``fa-ca-<sha256[:8]>``: an intermediate fortiauto put on the unit, named by its fingerprint."""
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    return f"{CERT_NAME_PREFIX}ca-{hashlib.sha256(der).hexdigest()[:8]}"


def certificate_name(mail_server: str, fingerprint_sha256: str) -> str:
    """``fa-<mail server>-<sha256[:8]>``: unique per certificate, recognisably fortiauto's own."""
    suffix = f"-{fingerprint_sha256[:8]}"
    stem = re.sub(r"[^A-Za-z0-9_.-]", "-", mail_server)
    stem = stem[: _CERT_NAME_MAX - len(CERT_NAME_PREFIX) - len(suffix)]
    return f"{CERT_NAME_PREFIX}{stem}{suffix}"


def _cert_name(ms: MailServer) -> str:
    return certificate_name(ms.name, ms.certificate.fingerprint_sha256 or "0" * 64)


def recommended(ms: MailServer, version: FortiOSVersion, *, rung: str | None = None) -> Objects:
    """Desired objects per task name; ``rung`` ``certificate-inspection`` keeps SSL as it was.

    The variant is the one the unit takes (``version`` carries its model): one SSL form
    (``ssl.inspect-all``, or per-protocol ``smtps`` where a proxy policy refuses inspect-all),
    ``feature-set`` only where the profile has it. A unit that cannot take the fix at all is a
    ``Refused`` (exit 5) raised here, before any read or write.
    """
    require_takes_fix(version)
    objects: Objects = {}
    if rung is None:
        cert = _cert_name(ms)
        chain = intermediates(ms.certificate.cert_pem)
        if chain:
            objects["ca_certificate"] = {
                "certificates": [{"name": ca_certificate_name(pem), "ca": pem} for pem in chain]
            }
        objects["certificate"] = {"name": cert}
        objects["ssl_profile"] = {
            "name": ms.ssl_profile,
            "comment": f"fortiauto: Protecting SSL Server for {ms.name}",
            "server-cert-mode": "replace",
            "server-cert": [{"name": cert}] if version.server_cert_is_list else cert,
            **_ssl_form(version),
        }
    objects["protocol_options"] = {
        "name": ms.protocol_options,
        "comment": f"fortiauto: SMTP inspection for {ms.name}",
        "smtp": {"ports": _SMTP_PORTS, "status": "enable"},
    }
    objects["emailfilter"] = _emailfilter(ms, version)
    objects["policy"] = {
        "inspection-mode": "proxy",
        "utm-status": "enable",
        "ssl-ssh-profile": ms.ssl_profile if rung is None else FALLBACK_SSL_PROFILE,
        "emailfilter-profile": ms.emailfilter_profile,
        "profile-protocol-options": ms.protocol_options,
    }
    return _with_profile_group(ms, objects)


def _with_profile_group(ms: MailServer, objects: Objects) -> Objects:
    """With ``policy.profile_group: edit``, the group's members are the policy's profiles.

    The task applies them only when the policy really has ``profile-type group``; the group's
    name is the policy's, known once it is read.
    """
    policy = objects.get("policy")
    if ms.policy.profile_group != "edit" or policy is None or "profile_group" in objects:
        return objects
    members = {key: policy[key] for key in PROFILE_GROUP_MEMBERS if key in policy}
    return objects | {"profile_group": members} if members else objects


def require_takes_fix(version: FortiOSVersion) -> None:
    """Raise ``Refused`` when the unit has no proxy inspection, which every rung of the fix needs."""
    if not version.has_proxy_inspection:
        raise Refused(
            f"{version.describe()}: a FortiGate with 2 GB RAM or less has no proxy-based inspection from "
            "FortiOS 7.4.4 (FortiOS admin guide, 'Proxy-related features not supported on FortiGate 2 GB "
            "RAM models'), so the email filter cannot log SMTP and no rung of the fix can be written; "
            "FortiOS 7.6.5 brings proxy inspection back for mail on these models: upgrade, then run again"
        )


def _ssl_form(version: FortiOSVersion) -> dict[str, Any]:
    """Exactly one SSL form: FortiOS hides the per-protocol blocks while ``ssl.inspect-all`` is set."""
    if version.proxy_takes_inspect_all:
        return {"ssl": {"inspect-all": "deep-inspection"}}
    return {
        "ssl": {"inspect-all": "disable"},
        "smtps": {"ports": _SMTPS_PORT, "status": "deep-inspection"},
    }


def _emailfilter(ms: MailServer, version: FortiOSVersion) -> dict[str, Any]:
    """Log all mail on every container; a profile fortiauto creates also checks for spam (tag only)."""
    containers = _MAIL_CONTAINERS + (("other-webmails",) if version.has_other_webmails else ())
    log = version.emailfilter_log_field
    profile: dict[str, Any] = {
        "name": ms.emailfilter_profile,
        "comment": f"fortiauto: log all inbound mail for {ms.name}",
    }
    if version.has_feature_set:
        profile["feature-set"] = "proxy"
    profile["spam-log"] = "enable"
    profile.update({container: {log: "enable"} for container in containers})
    profile[ON_CREATE] = {
        "spam-filtering": "enable",
        "options": " ".join(ms.spam_checks),
        "smtp": {"action": "tag"},
    }
    return profile


def merge_shared(entries: Sequence[tuple[MailServer, str, Objects]]) -> list[Objects]:
    """One desired state per shared object: mail servers of one device sharing a profile agree.

    ``entries`` is each mail server with its VDOM and desired objects, in site order. A profile
    two mail servers share gets the union of their ``server-cert`` lists and one comment naming
    them all (in site order, so re-runs write nothing); any other difference, or two certificates
    for a profile that holds one (FortiOS 6.4), is a ``PlanError`` naming both mail servers.
    """
    merged: dict[tuple[str, str, str], tuple[list[str], dict[str, Any]]] = {}
    for ms, vdom, objects in entries:
        for task, obj in objects.items():
            if task not in _SHAREABLE or "name" not in obj:
                continue
            key = (vdom, task, str(obj["name"]))
            if key not in merged:
                merged[key] = ([ms.name], _specific(obj, ms.name))
                continue
            names, shape = merged[key]
            _merge_into(shape, _specific(obj, ms.name), (names[0], ms.name), task)
            names.append(ms.name)
    out: list[Objects] = []
    for _ms, vdom, objects in entries:
        own = dict(objects)
        for task, obj in objects.items():
            found = merged.get((vdom, task, str(obj.get("name")))) if task in _SHAREABLE else None
            if found is not None and len(found[0]) > 1:
                own[task] = _general(found[1], found[0])
        out.append(own)
    return out


_SHAREABLE = ("ssl_profile", "protocol_options", "emailfilter")
_NAMES_MARK = "\x00mail servers\x00"


def _specific(obj: dict[str, Any], name: str) -> dict[str, Any]:
    """``obj`` with the mail server's name in its comment replaced by a mark (to compare shapes)."""
    shape = dict(obj)
    comment = shape.get("comment")
    if isinstance(comment, str) and name in comment:
        shape["comment"] = comment.replace(name, _NAMES_MARK)
    return shape


def _general(shape: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    out = dict(shape)
    if isinstance(out.get("comment"), str):
        out["comment"] = out["comment"].replace(_NAMES_MARK, ", ".join(names))
    return out


def _merge_into(shape: dict[str, Any], other: dict[str, Any], who: tuple[str, str], task: str) -> None:
    where = f"{task} {shape.get('name')!r}, shared by mail servers {who[0]} and {who[1]}"
    for key in dict.fromkeys([*shape, *other]):
        mine, theirs = shape.get(key), other.get(key)
        if mine == theirs:
            continue
        if key == "server-cert" and isinstance(mine, list) and isinstance(theirs, list):
            shape[key] = mine + [entry for entry in theirs if entry not in mine]
        elif key == "server-cert":
            raise PlanError(
                f"{where}: on this FortiOS release an SSL/SSH profile holds one certificate "
                f"({mine} and {theirs} are wanted); give each mail server its own ssl_profile"
            )
        else:
            raise PlanError(f"{where}: they want different {key!r}; give each its own profile")


def desired_objects(
    ms: MailServer, version: FortiOSVersion, *, rung: str | None = None, templates: Path | None = None
) -> Objects:
    """The site's own template when it has one for this version, else the recommendation."""
    template = _site_template(templates, version)
    if template is None:
        return recommended(ms, version, rung=rung)
    require_takes_fix(version)
    values = {
        _PLACEHOLDER.format(key): value
        for key, value in (
            ("name", ms.name),
            ("emailfilter_profile", ms.emailfilter_profile),
            ("ssl_profile", ms.ssl_profile),
            ("protocol_options", ms.protocol_options),
            ("cert_name", _cert_name(ms)),
            ("spam_checks", " ".join(ms.spam_checks)),
        )
    }
    shape = _parsed_template(str(template), template.stat().st_mtime_ns, version, rung)
    filled = {task: _fill(obj, values) for task, obj in shape.items()}
    # The chain is the certificate file's content, not a configuration choice: never templated.
    chain = recommended(ms, version, rung=rung).get("ca_certificate")
    return _with_profile_group(
        ms,
        filled | ({"ca_certificate": chain} if chain is not None and "ca_certificate" not in filled else {}),
    )


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
