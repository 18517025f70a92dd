"""``/api/v2/monitor/...``: the monitor endpoints clients and fortiauto read, plus certificate import.

What real clients call at start-up (``system/status``, ``license/status``), what fortiauto
needs for its certificate task (``vpn-certificate/local/import`` with base64 PEM, key
checked against the certificate, an existing name refused as FortiOS refuses it;
``system/available-certificates``; ``system/certificate/download``), a config backup
(raw ``#config-version=`` text; GET refused with 405 from 7.4.5 as on real units),
policy hit counts, and the facts a pre-flight check reads: ``web-ui/state`` (the calling
admin's access profile, ``centrally_managed``, ``ha_mode`` / ``is_ha_master``, shaped like the
real answer in fortigate_exporter's testdata), ``system/ha-peer``, ``system/ha-checksums`` and
the central-management status. Monitor success envelopes carry no ``http_status``, as
FortiOS's do.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from aiohttp import web

from fortiauto_lab.auth import authenticate
from fortiauto_lab.backup import render_backup
from fortiauto_lab.cmdb import VdomError, resolve_vdoms
from fortiauto_lab.envelope import BodyError, Target, envelope, error_envelope, json_response, parse_body
from fortiauto_lab.fields import CmdbError
from fortiauto_lab.pki import (
    CertKey,
    KeyMismatch,
    cert_facts,
    load_key_pair,
    load_pkcs12_pair,
    same_certificate,
)
from fortiauto_lab.query import FilterError, apply_format, matches, page, parse_filters

if TYPE_CHECKING:
    from fortiauto_lab.device import LabDevice

__all__ = ["READ_ONLY_POSTS", "handle_monitor"]

_CERTS = "vpn.certificate/local"
_CAS = "vpn.certificate/ca"
# Monitor POSTs that change no configuration (for the request counters and write faults): a
# backup, and saving a revision (FortiOS keeps revisions beside the configuration, which the
# save leaves as it is), so a run that saves one before writing still counts 0 writes on a no-op.
READ_ONLY_POSTS = frozenset({"system/config/backup", "system/config-revision/save"})

Handler = Callable[[web.Request, "LabDevice", Target], Awaitable[web.Response]]


async def handle_monitor(request: web.Request, device: LabDevice, segments: list[str]) -> web.Response:
    """Serve one ``/api/v2/monitor/<path>/<name>[/<action>]`` request."""
    segments = [s for s in segments if s]
    path, name, action = ([*segments, "", "", ""])[:3]
    try:
        vdoms, _ = resolve_vdoms(device, request.query)
    except VdomError as exc:
        return json_response(error_envelope(device, Target(request.method, exc.vdom, path, name), 403), 403)
    target = Target(request.method, vdoms[0], path, name, action or None)
    route = _ROUTES.get((request.method, "/".join(segments)))
    if route is None:
        known_path = any(key[1] == "/".join(segments) for key in _ROUTES)
        status = 405 if known_path else 404
        return json_response(error_envelope(device, target, status), status)
    try:
        return await route(request, device, target)
    except FilterError as exc:
        return json_response(error_envelope(device, target, 400, cli_error=str(exc)), 400)


def _ok(device: LabDevice, target: Target, results: Any, **fields: Any) -> web.Response:
    return json_response(envelope(device, target, http_status=None, results=results, **fields))


def _listing(request: web.Request, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    filters = parse_filters(request.query.getall("filter", []))
    rows = [r for r in rows if matches(r, filters)]
    rows = page(rows, request.query.get("start"), request.query.get("count"))
    return [apply_format(r, request.query.get("format")) for r in rows]


# --- status ---------------------------------------------------------------------------


def _model(device: LabDevice) -> dict[str, Any]:
    """The model fields of ``system/status`` and ``web-ui/state`` (fortigate_exporter status sample)."""
    name = device.model.name.split("-", 1)[0]
    return {"model_name": name, "model_number": device.model.number, "model": device.model.code}


async def _status(_: web.Request, device: LabDevice, target: Target) -> web.Response:
    results = {
        **_model(device),
        "hostname": device.store.singleton(target.vdom, "system/global").get("hostname", device.name),
        "log_disk_status": "available",
    }
    return _ok(device, replace(target, action=""), results)


async def _license(_: web.Request, device: LabDevice, target: Target) -> web.Response:
    results = {
        "fortiguard": {"type": "cloud_service_subscription", "status": "licensed"},
        "forticare": {"type": "other", "status": "registered", "account": "lab@example.test"},
        "vm": {"type": "platform", "status": "vm_valid", "valid": True},
        "antivirus": {"type": "downloaded", "status": "licensed", "version": "92.01234"},
        "antispam": {"type": "cloud_service_subscription", "status": "licensed"},
        "vdom": {"type": "platform", "can_upgrade": False, "used": len(device.store.vdoms), "max": 10},
    }
    return _ok(device, target, results)


async def _ha_checksums(_: web.Request, device: LabDevice, target: Target) -> web.Response:
    snapshot = json.loads(device.store.dump())

    def digest(part: Any) -> str:
        return hashlib.md5(json.dumps(part, sort_keys=True).encode(), usedforsecurity=False).hexdigest()

    checksum = {"global": digest(snapshot["global"]), "all": digest(snapshot)}
    checksum |= {vdom: digest(data) for vdom, data in snapshot["vdoms"].items()}
    # A synchronised pair: both members report the same checksums.
    rows = [
        {
            "is_manage_master": int(member["primary"]),
            "is_root_master": int(member["primary"]),
            "serial_no": member["serial_no"],
            "checksum": checksum,
        }
        for member in device.ha_members()
    ]
    return _ok(device, target, rows)


async def _ha_peer(_: web.Request, device: LabDevice, target: Target) -> web.Response:
    rows: list[dict[str, Any]] = []
    for member in device.ha_members() if device.ha_role else []:
        row = {k: member[k] for k in ("serial_no", "hostname", "priority")} | {"vcluster_id": 0}
        if member["primary"] and device.version.has("monitor.ha-peer-primary-flag"):
            row["primary"] = True  # 7.4+ flags the primary (fortigate_exporter testdata ha-peer-74+)
        rows.append(row)
    return _ok(device, target, rows)


async def _central_management(_: web.Request, device: LabDevice, target: Target) -> web.Response:
    conf = device.store.singleton(target.vdom, "system/central-management")
    managed = conf.get("type") == "fortimanager"
    results = {
        "mode": conf.get("mode", "normal"),
        "type": conf.get("type", "none"),
        "status": "up" if managed else "down",
        "registration_status": "registered" if managed else "unknown",
        "mgmt_ip": conf.get("fmg", ""),
    }
    return _ok(device, target, results)


async def _fortimanager(_: web.Request, device: LabDevice, target: Target) -> web.Response:
    conf = device.store.singleton(target.vdom, "system/central-management")
    managed = conf.get("type") == "fortimanager"
    return _ok(device, target, {"mode": conf.get("mode"), "fortimanager_status": "up" if managed else "none"})


_GROUPS = ("secfabgrp", "ftviewgrp", "authgrp", "sysgrp", "netgrp", "loggrp", "fwgrp", "vpngrp", "utmgrp")
_HA_MODE_INDEX = {"standalone": 0, "a-a": 1, "a-p": 2}  # the order of `config system ha` `set mode`


def _admin(device: LabDevice, request: web.Request) -> dict[str, Any]:
    """The calling admin as web-ui/state describes it: name, access profile, vdoms."""
    principal = authenticate(device, request)
    token = principal is not None and principal.kind == "token"
    read_only = token and device.current_faults().read_only_token
    level = "read" if read_only else "read-write"
    name = "fortiauto-api" if token else device.username
    profile_name = "fortiauto-read-only" if read_only else "super_admin"
    profile: dict[str, Any] = {"name": profile_name, "q_origin_key": profile_name, "scope": "global"}
    profile |= {group: level for group in _GROUPS}
    return {
        "name": name,
        "login_name": name,
        "profile": profile,
        "global_admin": True,
        "super_admin": not read_only,
        "vdoms": list(device.store.vdoms),
    }


async def _web_ui_state(request: web.Request, device: LabDevice, target: Target) -> web.Response:
    central = device.store.singleton(target.vdom, "system/central-management")
    ha = device.store.singleton(target.vdom, "system/ha")
    results = {
        **_model(device),
        "hostname": device.store.singleton(target.vdom, "system/global").get("hostname", device.name),
        "admin": _admin(device, request),
        "centrally_managed": central.get("type") == "fortimanager",
        "fortimanager_backup_mode": central.get("mode") == "backup",
        "vdom_mode": "multi-vdom" if len(device.store.vdoms) > 1 else "no-vdom",
        "management_vdom": device.store.vdoms[0],
        "ha_mode": _HA_MODE_INDEX.get(str(ha.get("mode")), 0),
        "is_ha_master": int(device.ha_role != "secondary"),
        "is_vm": device.model.code.startswith("FGVM"),
    }
    return _ok(device, target, results)


async def _policy_stats(request: web.Request, device: LabDevice, target: Target) -> web.Response:
    wanted = request.query.get("policyid")
    rows: list[dict[str, Any]] = [_policy_row(device, target.vdom, 0, "")]
    for policy in device.store.members(target.vdom, "firewall/policy"):
        rows.append(_policy_row(device, target.vdom, int(policy["policyid"]), str(policy.get("uuid", ""))))
    if wanted:
        rows = [r for r in rows if str(r["policyid"]) in wanted.split(",")]
    return _ok(device, target, _listing(request, rows))


def _policy_row(device: LabDevice, vdom: str, policyid: int, uuid: str) -> dict[str, Any]:
    hits = device.hits.get((vdom, policyid), 0)
    row: dict[str, Any] = {"policyid": policyid, "active_sessions": 0}
    if uuid:
        row["uuid"] = uuid
    for counter in ("bytes", "packets", "software_bytes", "software_packets", "asic_bytes", "asic_packets"):
        row[counter] = 0
    row |= {"hit_count": hits, "session_count": hits}
    if hits:
        row |= {"first_used": 0, "last_used": 0, "session_first_used": 0, "session_last_used": 0}
    return row


# --- certificates ---------------------------------------------------------------------


async def _available_certificates(request: web.Request, device: LabDevice, target: Target) -> web.Response:
    store = device.store
    scope = request.query.get("scope", "vdom")
    rows: list[dict[str, Any]] = []
    for cert in store.members(target.vdom, _CERTS):
        if scope == "global" and cert.get("range") != "global":
            continue
        if request.query.get("mkey") and cert["name"] != request.query["mkey"]:
            continue
        rows.append(_certificate_row(device, target.vdom, cert))
    if request.query.get("with_ca", "").lower() in ("1", "true"):
        rows += [_ca_row(device, target.vdom, ca) for ca in store.members(target.vdom, _CAS)]
        if request.query.get("mkey"):
            rows = [r for r in rows if r["name"] == request.query["mkey"]]
    return _ok(device, target, _listing(request, rows))


def _ca_row(device: LabDevice, vdom: str, ca: Mapping[str, Any]) -> dict[str, Any]:
    # Imported CA certificates are listed with with_ca=1; the lab calls them "remote-ca" (one of
    # the types [BX] shows; which type FortiOS gives an imported intermediate is not documented).
    row: dict[str, Any] = {
        "name": ca["name"],
        "source": ca.get("source", "user"),
        "range": ca.get("range", "vdom"),
        "exists": True,
        "is_built_in": False,
        "type": "remote-ca",
    }
    row |= cert_facts(str(ca["ca"]))
    row |= {
        "q_path": "vpn.certificate",
        "q_name": "ca",
        "q_ref": device.store.ref_count(vdom, _CAS, ca["name"]),
        "q_static": False,
        "q_type": 154,
    }
    return row


def _certificate_row(device: LabDevice, vdom: str, cert: Mapping[str, Any]) -> dict[str, Any]:
    facts = cert_facts(str(cert["certificate"]))
    is_ca = bool(facts["is_ca"])
    built_in = cert.get("source") == "factory"
    row: dict[str, Any] = {
        "name": cert["name"],
        "source": cert.get("source", "user"),
        "comments": cert.get("comments", ""),
        "range": cert.get("range", "vdom"),
        "exists": True,
        "is_ssl_server_cert": True,
        "is_proxy_ssl_cert": True,
        "is_general_allowable_cert": True,
        "is_default_local": cert["name"] == "Fortinet_Factory",
        "is_built_in": built_in,
        "is_wifi_cert": False,
        "is_deep_inspection_cert": is_ca,
        "has_valid_cert_key": bool(cert.get("private-key")),
        "is_local_ca_cert": is_ca,
        "type": "local-ca" if is_ca else "local-cer",
    }
    row |= facts
    row |= {
        "q_path": "vpn.certificate",
        "q_name": "local",
        "q_ref": device.store.ref_count(vdom, _CERTS, cert["name"]),
        "q_static": built_in,
        "q_type": 155,
    }
    return row


async def _download_certificate(request: web.Request, device: LabDevice, target: Target) -> web.Response:
    name = request.query.get("mkey", "")
    if not device.store.exists(target.vdom, _CERTS, name):
        return json_response(error_envelope(device, target, 404, error=-3), 404)
    pem = str(device.store.get(target.vdom, _CERTS, name)["certificate"])
    headers = {"Content-Disposition": f'attachment; filename="{name}.cer"'}
    return web.Response(text=pem, content_type="application/x-x509-ca-cert", headers=headers)


def _b64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise CmdbError(500, -145, "Invalid certificate file content")
    try:
        # FortiOS wants plain base64 without whitespace (fortios-objects.md 5.1).
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise CmdbError(500, -145, "Invalid base64 file content") from None


def _imported_pair(body: Mapping[str, Any]) -> CertKey:
    password = str(body.get("password") or "") or None
    try:
        if body["type"] == "pkcs12":
            return load_pkcs12_pair(_b64(body["file_content"]), password)
        return load_key_pair(_b64(body["file_content"]), _b64(body.get("key_file_content", "")), password)
    except KeyMismatch as exc:
        raise CmdbError(500, -145, str(exc)) from None


async def _import_certificate(request: web.Request, device: LabDevice, target: Target) -> web.Response:
    try:
        body = parse_body(await request.read())
    except BodyError as exc:
        return json_response(error_envelope(device, target, exc.http_status), exc.http_status)
    required = ("type", "certname", "file_content")
    if not isinstance(body, Mapping) or any(not body.get(k) for k in required):
        return json_response(error_envelope(device, target, 424), 424)
    if body["type"] not in ("regular", "pkcs12"):
        return json_response(error_envelope(device, target, 424), 424)
    try:
        pair = _imported_pair(body)
        name = str(body["certname"])
        if device.store.exists(target.vdom, _CERTS, name):
            raise CmdbError.duplicate()
        record = {
            "name": name,
            "certificate": pair.cert_pem,
            "private-key": pair.key_pem,
            "source": "user",
            "range": "global" if body.get("scope") == "global" else "vdom",
        }
        device.store.create(target.vdom, _CERTS, record)
    except CmdbError as exc:
        failure = error_envelope(device, target, exc.http_status, error=exc.error, cli_error=exc.cli_error)
        return json_response(failure, exc.http_status)
    return json_response(envelope(device, target, results={"status": "success", "mkey": name}))


# --- backup ---------------------------------------------------------------------------


async def _backup(request: web.Request, device: LabDevice, target: Target) -> web.Response:
    if request.method == "GET" and device.version.has("monitor.backup-post-only"):
        # 7.4.5+ refuses the GET form (Ansible collection #350/#361); POST is required.
        return json_response(error_envelope(device, target, 405), 405)
    params: Mapping[str, Any] = request.query
    if request.method == "POST":
        try:
            posted = parse_body(await request.read())
        except BodyError as exc:
            return json_response(error_envelope(device, target, exc.http_status), exc.http_status)
        params = {**request.query, **(posted if isinstance(posted, Mapping) else {})}
    scope = str(params.get("scope", "global"))
    if scope not in ("global", "vdom"):
        return json_response(error_envelope(device, target, 424), 424)
    text = render_backup(device, vdom=target.vdom if scope == "vdom" else None)
    headers = {"Content-Disposition": f'attachment; filename="{device.name}.conf"'}
    return web.Response(text=text, content_type="text/plain", headers=headers)


# --- CA certificates ------------------------------------------------------------------


def _ca_name(device: LabDevice, vdom: str) -> str:
    # The import API takes no name: FortiOS names imported CAs CA_Cert_1, CA_Cert_2, ...
    taken = {str(c["name"]) for c in device.store.members(vdom, _CAS)}
    return next(f"CA_Cert_{n}" for n in range(1, len(taken) + 2) if f"CA_Cert_{n}" not in taken)


def _new_ca(device: LabDevice, vdom: str, body: Any) -> str:
    """Check and store one CA certificate import; returns its name. Raises ``CmdbError``."""
    if not isinstance(body, Mapping) or body.get("import_method", "file") != "file":
        raise CmdbError(424, None, "only import_method file is served by the lab")
    try:
        pem = _b64(body.get("file_content")).decode("ascii")
        if not cert_facts(pem)["is_ca"]:
            raise CmdbError(500, -145, "Invalid CA certificate: not a CA")
    except (UnicodeDecodeError, ValueError):
        raise CmdbError(500, -145, "Invalid CA certificate file content") from None
    if any(same_certificate(pem, str(c["ca"])) for c in device.store.members(vdom, _CAS)):
        raise CmdbError.duplicate()
    name = _ca_name(device, vdom)
    scope = "global" if body.get("scope") == "global" else "vdom"
    device.store.create(vdom, _CAS, {"name": name, "ca": pem, "range": scope})
    return name


async def _import_ca(request: web.Request, device: LabDevice, target: Target) -> web.Response:
    """``vpn-certificate/ca/import``: ``import_method`` file, base64 ``file_content``, ``scope``."""
    try:
        name = _new_ca(device, target.vdom, parse_body(await request.read()))
    except BodyError as exc:
        return json_response(error_envelope(device, target, exc.http_status), exc.http_status)
    except CmdbError as exc:
        failure = error_envelope(device, target, exc.http_status, error=exc.error, cli_error=exc.cli_error)
        return json_response(failure, exc.http_status)
    return json_response(envelope(device, target, results={"status": "success", "mkey": name}))


# --- configuration revisions --------------------------------------------------------


async def _body(request: web.Request) -> Mapping[str, Any]:
    try:
        body = parse_body(await request.read())
    except BodyError:
        return {}
    return body if isinstance(body, Mapping) else {}


def _config_id(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


async def _revisions(_: web.Request, device: LabDevice, target: Target) -> web.Response:
    v = device.version
    results = {
        "revisions": [r.to_json() for r in device.revisions.newest_first()],
        "categories": {
            "1": {
                "major_version": v.major,
                "minor_version": v.minor,
                "patch_number": v.patch,
                "build_number": device.build,
                "release_number": 0,
            }
        },
        "current_config_unsaved": True,
    }
    return _ok(device, target, results)


async def _save_revision(request: web.Request, device: LabDevice, target: Target) -> web.Response:
    body = await _body(request)
    comment = str(body.get("comments", body.get("comment", "")))[:255]
    admin = str(_admin(device, request)["name"])
    revision = device.revisions.save(device.store.dump(reveal_secrets=True), admin=admin, comment=comment)
    return _ok(device, target, {"config_id": revision.id})


async def _revision_info(request: web.Request, device: LabDevice, target: Target) -> web.Response:
    revision = device.revisions.get(_config_id(request.query.get("config_id")) or 0)
    if revision is None:
        return json_response(error_envelope(device, target, 404, error=-3), 404)
    return _ok(device, target, revision.to_json())


async def _delete_revisions(request: web.Request, device: LabDevice, target: Target) -> web.Response:
    raw = (await _body(request)).get("config_ids", [])
    ids = {i for i in (_config_id(v) for v in (raw if isinstance(raw, list) else [raw])) if i is not None}
    return _ok(device, target, {"deleted": device.revisions.delete(ids)})


async def _comment_revision(request: web.Request, device: LabDevice, target: Target) -> web.Response:
    body = await _body(request)
    if not device.revisions.comment(_config_id(body.get("config_id")) or 0, str(body.get("comments", ""))):
        return json_response(error_envelope(device, target, 404, error=-3), 404)
    return _ok(device, target, {})


async def _restore(request: web.Request, device: LabDevice, target: Target) -> web.Response:
    """``system/config/restore`` from a saved revision (``source: revision``, ``config_id``).

    A real unit reboots after a global restore unless told not to; the lab applies it at once.
    """
    body = await _body(request)
    if body.get("source") != "revision":
        return json_response(error_envelope(device, target, 424), 424)
    revision = device.revisions.get(_config_id(body.get("config_id")) or 0)
    if revision is None:
        return json_response(error_envelope(device, target, 404, error=-3), 404)
    device.store.load(revision.snapshot)
    return _ok(device, target, {"config_id": revision.id, "restored": True})


_ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "system/status"): _status,
    ("GET", "license/status"): _license,
    ("GET", "license/status/select"): _license,
    ("GET", "web-ui/state"): _web_ui_state,
    ("GET", "system/ha-checksums"): _ha_checksums,
    ("GET", "system/ha-peer"): _ha_peer,
    ("GET", "system/central-management/status"): _central_management,
    ("GET", "system/fortimanager/status"): _fortimanager,
    ("GET", "firewall/policy"): _policy_stats,
    ("GET", "firewall/policy/select"): _policy_stats,
    ("GET", "system/available-certificates"): _available_certificates,
    ("GET", "system/certificate/download"): _download_certificate,
    ("POST", "vpn-certificate/local/import"): _import_certificate,
    ("GET", "system/config/backup"): _backup,
    ("POST", "system/config/backup"): _backup,
    ("POST", "vpn-certificate/ca/import"): _import_ca,
    ("GET", "system/config-revision"): _revisions,
    ("GET", "system/config-revision/info"): _revision_info,
    ("POST", "system/config-revision/save"): _save_revision,
    ("POST", "system/config-revision/delete"): _delete_revisions,
    ("POST", "system/config-revision/update-comments"): _comment_revision,
    ("POST", "system/config/restore"): _restore,
}
