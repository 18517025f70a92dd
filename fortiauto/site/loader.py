"""Load and validate a site file into ``site.Site``: every problem at once, each with file, line and key.

``load_site(path)`` reads the file (``files.py``: regular files only, size-capped), parses it
with libyaml into plain data and a line for every key (``yamldata.py``), resolves
``${env:X}`` / ``${file:P}`` references into secret strings, merges ``defaults`` into every
device, validates with the models in ``models.py``, and checks certificate files (PEM parses,
key matches, passphrase opens it, not expired; each file read and checked once per load).
Every problem becomes a ``Problem`` (file, line, key path, one-line message) collected into
one ``SiteInvalid``; nothing is contacted.
"""

from __future__ import annotations

import copy
import difflib
import functools
import hashlib
import os
import re
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, get_args
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from pydantic import (
    BaseModel,
    SecretStr,
    ValidationError,
)

from fortiauto import certs
from fortiauto.errors import InputError, Problem, SiteInvalid
from fortiauto.fortios.pinning import is_pin
from fortiauto.site.files import REFERENCED_FILE_CAP, SITE_FILE_CAP, read_capped
from fortiauto.site.models import SUPPORTED_VERSIONS, FortiManagerSpec, ProbeSpec, Site, parse_endpoint
from fortiauto.site.rules import SITE_RULE
from fortiauto.site.yamldata import MAX_DEPTH, Loc, key_path, parse_yaml

__all__ = ["load_fortimanager", "load_site", "load_site_data", "redacted_dump"]

_DEFAULT_KEYS = (
    "vdom",
    "verify_tls",
    "timeout",
    "token",
    "username",
    "password",
    "allow_insecure_http",
    "allow_fortimanager_managed",
    "probe",  # probe settings every mail server inherits (its own keys win)
)
# A device that names any of these brings its own credentials: none are inherited, so a
# device with username/password under a site-wide token is not "both".
_AUTH_KEYS = frozenset({"token", "username", "password"})
_REF = re.compile(r"\$\{([^}]*)\}")
_LABELS = {"mode": "probe mode", "fallback": "fallback rung", "confirm_delivery": "delivery confirmer"}


@dataclass
class _Collector:
    """Problems and warnings found so far, with the line of every key in the file."""

    file: str
    lines: dict[Loc, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seen: set[Loc] = field(default_factory=set)
    probe_inherited: set[Loc] = field(default_factory=set)  # (devices, i, mail_servers, j, probe, key)
    shown: set[str] = field(default_factory=set)
    # A fleet names one certificate, key and CA bundle for every device: each file is read and
    # checked once per load (an RSA key check costs ~30 ms).
    texts: dict[tuple[Path, str | Path], str | InputError] = field(default_factory=dict)
    opened_keys: dict[str, PrivateKeyTypes] = field(default_factory=dict)
    opened_certs: dict[str, certs.CertificateInfo | InputError] = field(default_factory=dict)
    matched: dict[tuple[str, str], bool] = field(default_factory=dict)
    ca_bundles: dict[Path, str | None] = field(default_factory=dict)
    absolute: dict[str, str] = field(default_factory=dict)  # paths as written -> resolved
    covers: dict[tuple[str, tuple[str, ...]], bool] = field(default_factory=dict)

    def line(self, loc: Loc) -> int | None:
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return None

    def add(self, loc: Loc, message: str) -> None:
        problem = Problem(message, file=self.file, line=self.line(loc), key=key_path(loc))
        if str(problem) not in self.shown:
            self.shown.add(str(problem))
            self.problems.append(problem)
        self.seen.add(loc)

    def text(self, base_dir: Path, written: str | Path) -> str:
        """The UTF-8 text of a file the site names, read once per load (``files.read_capped``).

        Raises:
            InputError: why it cannot be used, a phrase to follow the file's name.
        """
        cached = self.texts.get((base_dir, written))
        if cached is None:
            try:
                cached = read_capped(base_dir / written, cap=REFERENCED_FILE_CAP).decode("utf-8")
            except InputError as exc:
                cached = exc
            except UnicodeDecodeError:
                cached = InputError("is not UTF-8 text")
            self.texts[(base_dir, written)] = cached
        if isinstance(cached, InputError):
            raise cached
        return cached

    def covered(self, loc: Loc) -> bool:
        """True when a problem was already reported at ``loc`` or above it."""
        return any(loc[:end] in self.seen for end in range(len(loc) + 1))

    def warn(self, loc: Loc, message: str) -> None:
        line = self.line(loc)
        where = f"line {line}: {key_path(loc)}" if line is not None else key_path(loc)
        text = f"{where}: {message}"
        if text not in self.warnings:
            self.warnings.append(text)


@dataclass(frozen=True)
class _Refs:
    """Resolves ``${env:NAME}`` and ``${file:PATH}`` inside string values."""

    environ: Mapping[str, str]
    base_dir: Path

    def resolve(self, text: str, loc: Loc, out: _Collector) -> str:
        def one(match: re.Match[str]) -> str:
            if not match.group(1).isprintable():  # messages name the reference: it must be one line
                out.add(loc, "a ${...} reference contains a line break or control character")
                return match.group(0)
            kind, _, arg = match.group(1).partition(":")
            value = self._lookup(kind.strip(), arg.strip(), loc, out)
            return match.group(0) if value is None else value

        return _REF.sub(one, text)

    def _lookup(self, kind: str, arg: str, loc: Loc, out: _Collector) -> str | None:
        if kind == "env":
            if arg not in self.environ:
                out.add(loc, f"environment variable {arg!r} is not set (${{env:{arg}}})")
                return None
            return self.environ[arg]
        if kind == "file":
            return self._read(arg, loc, out)
        out.add(loc, f"unknown reference ${{{kind}:...}}; use ${{env:NAME}} or ${{file:PATH}}")
        return None

    def _read(self, arg: str, loc: Loc, out: _Collector) -> str | None:
        try:
            text = out.text(self.base_dir, arg)
        except InputError as exc:
            out.add(loc, f"file {arg!r} {exc} (${{file:{arg}}}{_relative(arg)})")
            return None
        # Editors end files with one newline that is not part of the secret; anything more
        # (a blank line, spaces) stays, and the models refuse it where it cannot be right.
        return text[:-2] if text.endswith("\r\n") else text.removesuffix("\n")


def _resolve_in_place(data: object, references: list[Loc], refs: _Refs, out: _Collector) -> None:
    """Resolve the references the parser found, where they are (its data is fresh: no copy needed)."""
    for loc in references:
        parent: Any = data
        for part in loc[:-1]:
            parent = parent[part]
        if loc:
            parent[loc[-1]] = refs.resolve(parent[loc[-1]], loc, out)


def _plain(node: object, loc: Loc, refs: _Refs, out: _Collector) -> Any:
    """A copy of parsed (or caller-given) data with references resolved; keys must be text."""
    if len(loc) > MAX_DEPTH and isinstance(node, Mapping | list | tuple):
        out.add(loc, f"nested more than {MAX_DEPTH} levels deep")
        return None
    if isinstance(node, Mapping):
        result: dict[str, Any] = {}
        for key, value in node.items():
            if not isinstance(key, str):
                out.add((*loc, str(key)), "keys must be text")
                continue
            result[key] = _plain(value, (*loc, key), refs, out)
        return result
    if isinstance(node, list | tuple):
        return [_plain(value, (*loc, index), refs, out) for index, value in enumerate(node)]
    if isinstance(node, str) and "${" in node:
        return refs.resolve(node, loc, out)
    return node


def _suggest(word: str, known: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


@functools.cache
def _user_fields(model: type[BaseModel]) -> tuple[str, ...]:
    hidden: frozenset[str] = getattr(model, "LOADER_FIELDS", frozenset())
    return tuple(name for name in model.model_fields if name not in hidden)


def _nested_model(annotation: object) -> type[BaseModel] | None:
    for arg in (annotation, *get_args(annotation)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


@functools.cache
def _field_model(model: type[BaseModel], name: str) -> type[BaseModel] | None:
    return _nested_model(model.model_fields[name].annotation)


def _check_keys(data: dict[str, Any], allowed: tuple[str, ...], loc: Loc, out: _Collector) -> None:
    for key in list(data):
        if key not in allowed:
            out.add((*loc, key), f"unknown key {key!r}{_suggest(key, allowed)}")
            del data[key]


def _check_model_keys(data: object, model: type[BaseModel] | None, loc: Loc, out: _Collector) -> None:
    """Report (and drop) unknown keys everywhere under ``data``, which should match ``model``."""
    if model is None:
        return
    if isinstance(data, list):
        for index, item in enumerate(data):
            _check_model_keys(item, model, (*loc, index), out)
        return
    if not isinstance(data, dict):
        return
    if not _user_field_set(model).issuperset(data):  # the common case (all keys known) is one set test
        _check_keys(data, _user_fields(model), loc, out)
    nested = _model_fields_of(model)
    for name, value in data.items():  # in the file's order, so problems come in the file's order
        if name in nested and isinstance(value, dict | list):
            _check_model_keys(value, _field_model(model, name), (*loc, name), out)


@functools.cache
def _user_field_set(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(_user_fields(model))


@functools.cache
def _model_fields_of(model: type[BaseModel]) -> frozenset[str]:
    """The fields of ``model`` that hold another model (or a list of them)."""
    return frozenset(name for name in _user_fields(model) if _field_model(model, name) is not None)


def _check_top(data: object, out: _Collector) -> dict[str, Any] | None:
    if data is None:
        out.problems.append(Problem("the file is empty; a site needs version: 1 and devices:", file=out.file))
        return None
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else "a single value"
        out.problems.append(
            Problem(
                f"the top level must be a mapping (version:, devices: ...), not {kind}",
                file=out.file,
                line=out.line(()),
            )
        )
        return None
    return data


def _check_version(data: dict[str, Any], out: _Collector) -> bool:
    if "version" not in data:
        out.add(("version",), "required key is missing (version: 1)")
        return True
    version = data["version"]
    if isinstance(version, int) and not isinstance(version, bool) and version in SUPPORTED_VERSIONS:
        return True
    scalar = isinstance(version, int | float | str) and not isinstance(version, bool)
    shown = f" {version!r}" if scalar and len(str(version)) < 20 else ""
    out.add(("version",), f"unsupported version{shown}; this fortiauto reads version 1")
    return False


def _absolute(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop (RuntimeError before Python 3.13): reading says so
        return Path(os.path.abspath(path))


def _resolve_path(value: object, base_dir: Path, out: _Collector) -> object:
    if not isinstance(value, str) or not value:
        return value
    # A fleet names the same few files for every device; resolving costs a few syscalls each time.
    if value not in out.absolute:
        out.absolute[value] = str(_absolute(base_dir / value))
    return out.absolute[value]


def _ca_problem(path: Path, out: _Collector) -> str | None:
    """Why the client could not verify TLS with this CA bundle, or None; once per file and load."""
    if path not in out.ca_bundles:
        try:
            context = ssl.create_default_context(cadata=out.text(path.parent, path.name))
            usable = sum(context.cert_store_stats().values()) > 0
            out.ca_bundles[path] = None if usable else "holds no PEM certificate"
        except InputError as exc:
            out.ca_bundles[path] = str(exc)
        except (ssl.SSLError, ValueError):
            out.ca_bundles[path] = "holds no PEM certificate a TLS client can load"
    return out.ca_bundles[path]


def _check_verify(
    section: dict[str, Any], loc: Loc, base_dir: Path, out: _Collector, *, pins: bool = False
) -> None:
    """A CA bundle named by ``verify_tls`` must load as the client would load it.

    With ``pins`` (a device's, or defaults'), ``"sha256:..."`` is a pin the model checks, not a path.
    """
    value = section.get("verify_tls")
    if not isinstance(value, str) or not value or (pins and is_pin(value)):
        return
    path = _absolute(base_dir / value)
    problem = _ca_problem(path, out)
    if problem is not None:
        reason = "not found" if problem == "not found" else problem
        out.add((*loc, "verify_tls"), f"CA bundle {value!r} {reason}{_relative(value, alone=True)}")
        return
    section["verify_tls"] = str(path)


def _merge_defaults(data: dict[str, Any], out: _Collector) -> set[tuple[int, str]]:
    """Copy ``defaults`` into each device; returns which (device, key) pairs were inherited."""
    defaults = data.pop("defaults", None)
    devices = data.get("devices")
    inherited: set[tuple[int, str]] = set()
    if defaults is None:
        return inherited
    if not isinstance(defaults, dict):
        out.add(("defaults",), "expected a mapping of device settings")
        return inherited
    if not isinstance(devices, list):
        return inherited
    for index, device in enumerate(devices):
        if not isinstance(device, dict):
            continue
        own_auth = bool(_AUTH_KEYS & device.keys())
        for key, value in defaults.items():
            if key in device or (own_auth and key in _AUTH_KEYS):
                continue
            device[key] = value
            inherited.add((index, key))
    return inherited


def _check_duplicates(items: object, loc: Loc, what: str, out: _Collector) -> None:
    if not isinstance(items, list):
        return
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            continue
        if name in first:
            where = out.line((*loc, first[name], "name"))
            out.add((*loc, index, "name"), f"duplicate {what} name {name!r} (first at line {where})")
        else:
            first[name] = index


def _relative(written: str, *, alone: bool = False) -> str:
    """How a message says where a relative path was looked for (nothing for an absolute one)."""
    if Path(written).is_absolute():
        return ""
    return " (relative to the site file)" if alone else ", relative to the site file"


def _read_text(written: str, base_dir: Path, what: str, loc: Loc, out: _Collector) -> str | None:
    try:
        return out.text(base_dir, written)
    except InputError as exc:
        out.add(loc, f"{what} file {written!r} {exc}{_relative(written, alone=True)}")
    return None


def _open_key(
    spec: dict[str, Any], loc: Loc, base_dir: Path, out: _Collector
) -> tuple[str, PrivateKeyTypes] | None:
    key_file, passphrase = spec.get("key"), spec.get("passphrase")
    if not isinstance(key_file, str) or not (passphrase is None or isinstance(passphrase, str)):
        return None  # the model reports the mistyped value
    if out.covered((*loc, "passphrase")):
        return None  # an unresolved ${env:} passphrase: do not also call it wrong
    key_pem = _read_text(key_file, base_dir, "key", (*loc, "key"), out)
    if key_pem is None:
        return None
    memo = hashlib.sha256(f"{passphrase}\0{key_pem}".encode()).hexdigest()
    if memo in out.opened_keys:
        return key_pem, out.opened_keys[memo]
    try:
        out.opened_keys[memo] = certs.load_private_key(key_pem, passphrase)
        return key_pem, out.opened_keys[memo]
    except InputError as exc:
        wrong = passphrase is not None and "wrong passphrase" in str(exc)
        out.add((*loc, "passphrase" if wrong else "key"), str(exc))
    return None


def _open_cert(
    spec: dict[str, Any], loc: Loc, base_dir: Path, out: _Collector
) -> certs.CertificateInfo | None:
    cert_file = spec.get("cert")
    if not isinstance(cert_file, str):
        return None
    cert_pem = _read_text(cert_file, base_dir, "certificate", (*loc, "cert"), out)
    if cert_pem is None:
        return None
    if cert_pem not in out.opened_certs:
        try:
            info = certs.load_certificate(cert_pem)
            certs.check_validity(info)
            out.opened_certs[cert_pem] = info
        except InputError as exc:
            out.opened_certs[cert_pem] = exc
    opened = out.opened_certs[cert_pem]
    if isinstance(opened, InputError):
        out.add((*loc, "cert"), str(opened))
        return None
    return opened


def _load_cert_material(spec: dict[str, Any], loc: Loc, base_dir: Path, out: _Collector) -> None:
    """Check the certificate and key files and put what the engine needs into ``spec``."""
    info = _open_cert(spec, loc, base_dir, out)
    opened = _open_key(spec, loc, base_dir, out)
    for name in ("cert", "key"):
        spec[name] = _resolve_path(spec.get(name), base_dir, out)
    if info is None or opened is None:
        return
    key_pem, private_key = opened
    pair = (info.fingerprint_sha256, key_pem)
    if pair not in out.matched:
        out.matched[pair] = certs.key_matches(info.leaf, private_key)
    if not out.matched[pair]:
        out.add((*loc, "key"), "the private key does not match the certificate")
        return
    warning = certs.expiry_warning(info)
    if warning:
        out.warn((*loc, "cert"), warning)
    spec.update(
        cert_pem=info.pem,
        key_pem=key_pem,
        fingerprint_sha256=info.fingerprint_sha256,
        not_after=info.not_after,
        sans=info.sans,
    )


def _check_server_name(server: dict[str, Any], loc: Loc, out: _Collector) -> None:
    probe, spec = server.get("probe"), server.get("certificate")
    if not isinstance(probe, dict) or not isinstance(spec, dict):
        return
    name, sans = probe.get("server_name"), spec.get("sans")
    if not isinstance(name, str) or not sans:
        return
    if (name, sans) not in out.covers:  # the same name and certificate on every device of a fleet
        out.covers[(name, sans)] = certs.name_covered(name, tuple(sans))
    if not out.covers[(name, sans)]:
        out.warn(
            (*loc, "probe", "server_name"),
            f"{name!r} is not covered by the certificate's SANs ({', '.join(sans)})",
        )


def _iter_dicts(items: object, loc: Loc) -> Iterator[tuple[Loc, dict[str, Any]]]:
    if isinstance(items, list):
        for index, item in enumerate(items):
            if isinstance(item, dict):
                yield (*loc, index), item


def _firewall(device: dict[str, Any]) -> tuple[str, int, str] | None:
    """Host, port and vdom: what makes two device entries the same firewall (after defaults)."""
    url, vdom = device.get("url"), device.get("vdom", "root")
    if not isinstance(url, str) or not isinstance(vdom, str):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port or (80 if parts.scheme.lower() == "http" else 443)
    except ValueError:
        return None  # the model explains the URL
    return (parts.hostname or "", port, vdom) if parts.hostname else None


def _check_same_firewall(data: dict[str, Any], out: _Collector) -> None:
    first: dict[tuple[str, int, str], tuple[str, Loc]] = {}
    for loc, device in _iter_dicts(data.get("devices"), ("devices",)):
        key = _firewall(device)
        if key is None:
            continue
        if key not in first:
            first[key] = (str(device.get("name")), loc)
            continue
        name, where = first[key]
        out.add(
            (*loc, "url"),
            f"the same firewall as device {name!r} (line {out.line((*where, 'url'))}): same host, port "
            f"and vdom {key[2]!r}; list each firewall once",
        )


def _prepare_devices(data: dict[str, Any], base_dir: Path, out: _Collector) -> None:
    _check_duplicates(data.get("devices"), ("devices",), "device", out)
    for loc, device in _iter_dicts(data.get("devices"), ("devices",)):
        _check_verify(device, loc, base_dir, out, pins=True)
        _check_duplicates(device.get("mail_servers"), (*loc, "mail_servers"), "mail server", out)
        for ms_loc, server in _iter_dicts(device.get("mail_servers"), (*loc, "mail_servers")):
            spec = server.get("certificate")
            if isinstance(spec, dict):
                _load_cert_material(spec, (*ms_loc, "certificate"), base_dir, out)
            _check_server_name(server, ms_loc, out)
            _check_imap_ca(server, ms_loc, base_dir, out)
            _check_probe_files(server.get("probe"), (*ms_loc, "probe"), base_dir, out)


def _check_imap_ca(server: dict[str, Any], loc: Loc, base_dir: Path, out: _Collector) -> None:
    """``probe.confirm_delivery.imap.verify_tls`` may name a CA bundle, relative to the site file."""
    probe = server.get("probe")
    confirm = probe.get("confirm_delivery") if isinstance(probe, dict) else None
    imap = confirm.get("imap") if isinstance(confirm, dict) else None
    if isinstance(imap, dict):
        _check_verify(imap, (*loc, "probe", "confirm_delivery", "imap"), base_dir, out)


def _check_probe_files(probe: object, loc: Loc, base_dir: Path, out: _Collector) -> None:
    """``via.key``, ``via.known_hosts`` and a ``verify_chain`` bundle are files relative to the site file."""
    if not isinstance(probe, dict):
        return
    via = probe.get("via")
    named = [(via, ("via", name), name) for name in ("key", "known_hosts")] if isinstance(via, dict) else []
    for section, sub, name in [*named, (probe, ("verify_chain",), "verify_chain")]:
        value = section.get(name)
        if not isinstance(value, str) or not value:
            continue  # absent, or true/false: the model says what is wrong
        path = _absolute(base_dir / value)
        try:
            out.text(path.parent, path.name)  # a regular file of sane size, as every named file
        except InputError as exc:
            out.add((*loc, *sub), f"file {value!r} {exc}{_relative(value, alone=True)}")
            continue
        section[name] = str(path)
    if isinstance(via, dict) and isinstance(via.get("ssh"), str) and not out.covered((*loc, "via")):
        _check_ssh_files(via, (*loc, "via"), out)


def _usable_text(written: object, loc: Loc, out: _Collector) -> str | None:
    """The text of a file ``_check_probe_files`` resolved and read, or None when it could not."""
    if not isinstance(written, str) or not Path(written).is_absolute() or out.covered(loc):
        return None
    try:
        return out.text(Path(written).parent, Path(written).name)
    except InputError:
        return None


def _check_ssh_files(via: dict[str, Any], loc: Loc, out: _Collector) -> None:
    """The SSH key must open and known_hosts must hold the host's key: found here, before any write."""
    import asyncssh  # noqa: PLC0415 - 0.2-0.9 s to import: only sites with an ssh vantage pay it

    key, known, passphrase = via.get("key"), via.get("known_hosts"), via.get("passphrase")
    # Both files were read (capped, regular files only) by _check_probe_files; an unreadable one
    # is reported there and not opened again here.
    key_text = _usable_text(key, (*loc, "key"), out)
    if key_text is not None and not out.covered((*loc, "passphrase")):
        try:
            asyncssh.import_private_key(key_text, passphrase if isinstance(passphrase, str) else None)
        except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError, OSError, ValueError) as exc:
            where = "passphrase" if passphrase and "passphrase" in str(exc).lower() else "key"
            out.add((*loc, where), f"cannot open the SSH key: {exc}")
    try:
        _, host, port = parse_endpoint(str(via.get("ssh")), 22)
    except ValueError:
        return  # the model explains the ssh value
    known_text = _usable_text(known, (*loc, "known_hosts"), out)
    if known_text is not None:
        try:
            trusted = asyncssh.import_known_hosts(known_text).match(host, "", port)
        except (OSError, ValueError) as exc:
            out.add((*loc, "known_hosts"), f"cannot read known_hosts: {exc}")
            return
        if not (trusted[0] or trusted[1]):  # neither a host key nor a CA key for the host
            shown = f"[{host}]:{port}" if port != 22 else host
            message = f"no host key for {shown} in {known}: the probe would refuse the host"
            out.add((*loc, "known_hosts"), message)


def _probe_defaults(defaults: dict[str, Any], base_dir: Path, out: _Collector) -> dict[str, Any]:
    """``defaults.probe``: probe settings (via, ehlo, verify_chain, ...) every mail server inherits."""
    probe = defaults.pop("probe", None)
    if probe is None:
        return {}
    if not isinstance(probe, dict):
        out.add(("defaults", "probe"), "expected a mapping of probe settings")
        return {}
    for own in ("host", "server_name"):
        if own in probe:
            out.add(("defaults", "probe", own), f"{own} is set per mail server, not in defaults")
            del probe[own]
    _check_model_keys(probe, ProbeSpec, ("defaults", "probe"), out)
    _check_probe_files(probe, ("defaults", "probe"), base_dir, out)
    return probe


def _merge_probe_defaults(data: dict[str, Any], defaults: dict[str, Any], out: _Collector) -> None:
    """Copy ``defaults.probe`` into each mail server's probe; a key the server sets wins (whole value)."""
    for loc, device in _iter_dicts(data.get("devices"), ("devices",)):
        for ms_loc, server in _iter_dicts(device.get("mail_servers"), (*loc, "mail_servers")):
            probe = server.get("probe")
            if not isinstance(probe, dict):
                continue
            for key, value in defaults.items():
                if key not in probe:
                    probe[key] = copy.deepcopy(value)
                    out.probe_inherited.add((*ms_loc, "probe", key))


def _probe_default_loc(loc: Loc, inherited: set[Loc]) -> Loc:
    # An inherited probe setting is wrong where it is written: under defaults.probe.
    if len(loc) >= 6 and loc[:6] in inherited:
        return ("defaults", "probe", *loc[5:])
    return loc


def _verify_off_warnings(data: dict[str, Any], inherited: set[tuple[int, str]], out: _Collector) -> None:
    for loc, device in _iter_dicts(data.get("devices"), ("devices",)):
        if device.get("verify_tls") is False:
            index = loc[1]
            assert isinstance(index, int)
            origin: Loc = ("defaults",) if (index, "verify_tls") in inherited else loc
            out.warn((*origin, "verify_tls"), "TLS verification is off: the device's identity is not checked")


def _templates(data: dict[str, Any], base_dir: Path, out: _Collector) -> None:
    value = data.get("templates")
    if not isinstance(value, str) or not value:
        return
    path = _absolute(base_dir / value)
    if not path.is_dir():
        out.add(("templates",), f"templates folder {value!r} not found (relative to the site file)")
        return
    data["templates"] = str(path)


def _type_label(value: object) -> str:  # noqa: PLR0911 - one label per YAML value type, first match wins
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, date):
        return "a date"
    return type(value).__name__


_EXPECTED = (
    ("int_", "a whole number"),
    ("float_", "a number"),
    ("bool_", "true or false"),
    ("string_type", "text"),
    ("tuple_type", "a list"),
    ("list_type", "a list"),
    ("model_type", "a mapping"),
    ("model_attributes_type", "a mapping"),
    ("dict_type", "a mapping"),
    ("datetime_", "a date and time such as 2026-11-24T22:00:00+01:00"),
    ("path_type", "a path"),
)
_BOUNDS = {
    "greater_than_equal": ("ge", "must be at least {}"),
    "less_than_equal": ("le", "must be at most {}"),
    "greater_than": ("gt", "must be greater than {}"),
    "less_than": ("lt", "must be less than {}"),
}


def _literal_message(loc: Loc, value: object, ctx: dict[str, Any]) -> str:
    choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
    label = next((_LABELS[p] for p in reversed(loc) if isinstance(p, str) and p in _LABELS), "value")
    shown = repr(value) if isinstance(value, str) and len(value) <= 40 else "this value"
    hint = _suggest(value, choices) if isinstance(value, str) else ""
    return f"unknown {label} {shown}; expected one of: {', '.join(choices)}{hint}"


def _error_message(error: Mapping[str, Any], loc: Loc) -> str:  # noqa: PLR0911 - one message per pydantic error kind, first match wins
    kind: str = error["type"]
    ctx: dict[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    if kind == SITE_RULE:
        return str(ctx["message"])
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "literal_error":
        return _literal_message(loc, value, ctx)
    if kind in ("too_short", "string_too_short"):
        return "must not be empty"
    if kind == "finite_number":
        return "must be a finite number (.inf and .nan are not)"
    if loc and loc[-1] == "port" and kind in _BOUNDS:
        return "port must be between 1 and 65535"
    if kind in _BOUNDS:
        bound, template = _BOUNDS[kind]
        return template.format(ctx.get(bound))
    for prefix, expected in _EXPECTED:
        if kind.startswith(prefix):
            return f"expected {expected}, got {_type_label(value)}"
    # Anything else: pydantic's own text, first line only, never the input value.
    return str(error.get("msg", "invalid value")).splitlines()[0].removeprefix("Value error, ")


def _error_loc(error: Mapping[str, Any], inherited: set[tuple[int, str]]) -> Loc:
    loc: Loc = tuple(error["loc"])
    if error["type"] == SITE_RULE and error.get("ctx", {}).get("key"):
        loc = (*loc, error["ctx"]["key"])
    # A value inherited from defaults is wrong where it is written, once.
    if len(loc) >= 3 and loc[0] == "devices":
        index, key = loc[1], loc[2]
        if isinstance(index, int) and isinstance(key, str) and (index, key) in inherited:
            loc = ("defaults", key, *loc[3:])
    return loc


def _validate(
    data: dict[str, Any], path: Path, inherited: set[tuple[int, str]], out: _Collector
) -> Site | None:
    data["path"] = path
    data["warnings"] = tuple(out.warnings)
    try:
        return Site.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = _probe_default_loc(_error_loc(error, inherited), out.probe_inherited)
            if not out.covered(loc):
                out.add(loc, _error_message(error, loc))
    return None


def _check_templates(site: Site, out: _Collector) -> None:
    """A site's own ``templates:`` render for every supported FortiOS family and every rung it uses.

    Apply renders them per device after reading its version; a broken template found here is
    one problem before any device is contacted, instead of one refusal per device.
    """
    servers = [ms for device in site.devices for ms in device.mail_servers]
    if site.templates is None or not servers:
        return
    # The next stage's builder, imported only for a site that brings its own templates (jinja2).
    from fortiauto.desired import desired_objects  # noqa: PLC0415
    from fortiauto.fortios.version import SUPPORTED_FAMILIES, FortiOSVersion  # noqa: PLC0415

    rungs: list[str | None] = [None, *sorted({rung for ms in servers for rung in ms.fallback})]
    for family in SUPPORTED_FAMILIES:
        for rung in rungs:
            try:
                desired_objects(servers[0], FortiOSVersion.parse(family), rung=rung, templates=site.templates)
            except InputError as exc:
                where = f"FortiOS {family}" + (f", fallback rung {rung}" if rung else "")
                out.add(("templates",), f"{' '.join(str(exc).split())} ({where})")
                return


def _load(
    raw: object,
    *,
    base_dir: Path,
    site_path: Path,
    out: _Collector,
    environ: Mapping[str, str],
    references: list[Loc] | None = None,
) -> Site:
    """The pipeline after parsing: references, keys, defaults, files, then the models.

    ``references`` (from the parser) says where references are; without it ``raw`` is data from
    a caller, copied while its references are resolved.
    """
    refs = _Refs(environ, base_dir)
    credentials = _credential_refs(raw, base_dir)
    if references is None:
        raw = _plain(raw, (), refs, out) if raw is not None else None
    else:
        _resolve_in_place(raw, references, refs, out)
    data = _check_top(raw, out)
    if data is None or not _check_version(data, out):
        raise SiteInvalid(out.problems)
    if data.get("devices") == []:
        out.add(("devices",), "list at least one device")
    defaults = data.get("defaults")
    if isinstance(defaults, dict):
        _check_keys(defaults, _DEFAULT_KEYS, ("defaults",), out)
        _check_verify(defaults, ("defaults",), base_dir, out, pins=True)
    if isinstance(data.get("fortimanager"), dict):
        _check_verify(data["fortimanager"], ("fortimanager",), base_dir, out)
    probe_defaults = _probe_defaults(defaults, base_dir, out) if isinstance(defaults, dict) else {}
    _check_keys(data, (*_user_fields(Site), "defaults"), (), out)
    for name, value in data.items():
        sub = _nested_model(Site.model_fields[name].annotation) if name != "defaults" else None
        if sub is not None:
            _check_model_keys(value, sub, (name,), out)
    # Devices are checked before defaults are merged in, so that a bad default is reported once.
    _prepare_devices(data, base_dir, out)
    _merge_probe_defaults(data, probe_defaults, out)
    inherited = _merge_defaults(data, out)
    _check_same_firewall(data, out)
    _templates(data, base_dir, out)
    _verify_off_warnings(data, inherited, out)
    site = _validate(data, site_path, inherited, out)
    if site is not None and not out.problems:
        _check_templates(site, out)
    if out.problems or site is None:
        raise SiteInvalid(out.problems)
    if not credentials:
        return site
    devices = tuple(
        d.model_copy(update={"credential_ref": credentials[i]}) if i in credentials else d
        for i, d in enumerate(site.devices)
    )
    return site.model_copy(update={"devices": devices})


_WHOLE_REF = re.compile(r"^\$\{(env|file):([^}]+)\}$")


def _credential_refs(raw: object, base_dir: Path) -> dict[int, str]:
    """Per device index, the reference its token (or password) is written as, before resolving.

    Only a value that is one whole reference is kept (a literal secret is never); a relative
    ``${file:}`` becomes absolute, so the journal can name it for a rollback from anywhere.
    """
    if not isinstance(raw, dict) or not isinstance(raw.get("devices"), list):
        return {}
    defaults: dict[str, Any] = raw["defaults"] if isinstance(raw.get("defaults"), dict) else {}
    found: dict[int, str] = {}
    for index, device in enumerate(raw["devices"]):
        if not isinstance(device, dict):
            continue
        for key in ("token", "password"):
            value = device.get(key, defaults.get(key))
            match = _WHOLE_REF.match(value.strip()) if isinstance(value, str) else None
            if match is not None:
                kind, arg = match.group(1), match.group(2).strip()
                arg = str(_absolute(base_dir / arg)) if kind == "file" else arg
                found[index] = f"${{{kind}:{arg}}}"
                break
    return found


def _site_text(path: Path, file: str) -> str:
    try:
        # Checked from fstat before reading: a huge file is refused without reading it.
        return read_capped(path, cap=SITE_FILE_CAP).decode("utf-8-sig")
    except InputError as exc:
        message = "site file not found" if str(exc) == "not found" else f"the site file {exc}"
        raise SiteInvalid([Problem(message, file=file)]) from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise SiteInvalid([Problem("the site file is not UTF-8 text", file=file, line=line)]) from None


def load_site(path: str | Path, *, environ: Mapping[str, str] | None = None) -> Site:
    """Read, resolve and validate a site file; contacts nothing.

    Args:
        path: the site file; relative paths inside it are relative to its folder.
        environ: where ``${env:NAME}`` looks (default ``os.environ``).

    Raises:
        SiteInvalid: every problem found, each with file, line and key path.
    """
    site_path = Path(path)
    out = _Collector(file=str(path))
    parsed = parse_yaml(_site_text(site_path, out.file), file=out.file)
    if parsed.problems:
        raise SiteInvalid(parsed.problems)
    out.lines = parsed.lines
    return _load(
        parsed.data,
        base_dir=site_path.absolute().parent,
        site_path=site_path.absolute(),
        out=out,
        environ=os.environ if environ is None else environ,
        references=parsed.references,
    )


def load_site_data(
    data: Mapping[str, Any],
    *,
    base_dir: Path,
    source: str = "<data>",
    environ: Mapping[str, str] | None = None,
) -> Site:
    """Validate a site given as data (e.g. Ansible module arguments) exactly as ``load_site`` does.

    Problems carry ``source`` as their file name and no line numbers. The site's ``path`` is a
    notional ``site.yml`` inside ``base_dir``, against which relative paths resolve.

    Raises:
        SiteInvalid: every problem found, each with its key path.
    """
    out = _Collector(file=source)
    return _load(
        data,
        base_dir=base_dir.absolute(),
        site_path=base_dir.absolute() / "site.yml",
        out=out,
        environ=os.environ if environ is None else environ,
    )


def load_fortimanager(path: str | Path, *, environ: Mapping[str, str] | None = None) -> FortiManagerSpec:
    """The ``fortimanager:`` block of a site file on its own (``devices`` may be absent); contacts nothing.

    ``fortiauto inventory`` reads a FortiManager from it before any device is written down.

    Raises:
        SiteInvalid: no such block, or its problems, each with file, line and key path.
    """
    site_path = Path(path)
    out = _Collector(file=str(path))
    parsed = parse_yaml(_site_text(site_path, out.file), file=out.file)
    if parsed.problems:
        raise SiteInvalid(parsed.problems)
    out.lines = parsed.lines
    top = parsed.data if isinstance(parsed.data, dict) else {}
    if not isinstance(top.get("fortimanager"), dict):
        out.add(("fortimanager",), "no fortimanager: block (url, token or username/password, adom)")
        raise SiteInvalid(out.problems)
    refs = _Refs(os.environ if environ is None else environ, site_path.absolute().parent)
    block = _plain(top["fortimanager"], ("fortimanager",), refs, out)
    _check_model_keys(block, FortiManagerSpec, ("fortimanager",), out)
    _check_verify(block, ("fortimanager",), site_path.absolute().parent, out)
    spec = None
    try:
        spec = FortiManagerSpec.model_validate(block)
    except ValidationError as exc:
        for error in exc.errors():
            loc = ("fortimanager", *_error_loc(error, set()))
            if not out.covered(loc):
                out.add(loc, _error_message(error, loc))
    if out.problems or spec is None:
        raise SiteInvalid(out.problems)
    return spec


def _redact(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return "***" if value.get_secret_value() else ""
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def redacted_dump(site: Site) -> dict[str, Any]:
    """The validated site as JSON-ready data, every secret shown as ``"***"``."""
    dumped: dict[str, Any] = _redact(site.model_dump(mode="python"))
    return dumped
