"""Start a mock FortiGate fleet on 127.0.0.1 and write the files that let anything use it.

``fortiauto lab up`` calls ``run_lab`` (foreground until SIGINT/SIGTERM); tests and
benchmarks use ``LabThread`` (the same lab on a background event loop) or ``start_lab``
directly. One event loop serves every device: per device one HTTPS site (its own
certificate from the lab CA, its own OS-picked port), one mail backend per VIP and a
STARTTLS and an implicit-TLS VIP listener in front of each. The state dir receives
``ca.pem``, ``site.yml`` (ready for ``fortiauto apply``), ``hosts.yml`` (Ansible
inventory), ``lab.json`` (everything tools and tests need, secrets included, 0600),
``tokens/<device>.token`` and the mail server's ``certs/mx1.pem`` / ``certs/mx1.key``.
"""

from __future__ import annotations

import asyncio
import copy
import io
import json
import os
import signal
import socket
import ssl
import tempfile
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from fortiauto_lab.app import make_app
from fortiauto_lab.dataplane import VipListener
from fortiauto_lab.device import LabDevice
from fortiauto_lab.errors import LabInputError
from fortiauto_lab.faults import Faults, faults_for_device, parse_fault_spec
from fortiauto_lab.fortimanager import RunningFortiManager, route_site, start_fortimanager
from fortiauto_lab.fortimanager.api import PACKAGE_LAYOUTS
from fortiauto_lab.hardware import Model, resolve_model
from fortiauto_lab.logsettings import LOG_DEVICES, LogDevice, use_log_device
from fortiauto_lab.persist import (
    PORTS_PER_DEVICE,
    Remembered,
    load_ca,
    load_mail_pair,
    port_layout,
    remembered,
)
from fortiauto_lab.pki import CertKey, issue_cert, make_ca, split_pem
from fortiauto_lab.release import Release, resolve_release
from fortiauto_lab.schema import build_schema
from fortiauto_lab.seed import MAIL_SITES, make_factory_certs, seed_template
from fortiauto_lab.smtp_backend import ExternalBackend, MailBackend, MailHandoff, parse_host_port
from fortiauto_lab.states import make_shared_cert

__all__ = ["Lab", "LabOptions", "LabThread", "run_lab", "start_lab"]

_MAIL_NAMES = {"vip-mx1": "mx1.example.test", "vip-mx2": "mx2.example.test"}
_MODES: tuple[Literal["starttls", "smtps"], ...] = ("starttls", "smtps")
_SHUTDOWN = 0.5  # seconds an HTTPS site waits for open keep-alive connections on stop


@dataclass(frozen=True)
class LabOptions:
    """What ``lab up`` was asked for (recorded in lab.json)."""

    devices: int = 1
    version: str = "7.0"
    faults: str | None = None
    model: str | None = None
    strict: bool = True  # the conservative readings (rules.py); ``lab up --lenient`` turns them off
    base_port: int | None = None
    host: str = "127.0.0.1"
    fortimanager: bool = False  # a mock FortiManager manages every device (fortiauto_lab/fortimanager/)
    fortimanager_packages: str = "per-device"  # a policy package per device, or "shared" by all
    maildir: Path | None = None  # built-in backends also deliver into this Maildir (smtp_backend.py)
    backend: str | None = None  # HOST:PORT of an external MTA the VIPs relay to instead
    log_device: str = "memory"  # the one log device each unit logs to (logsettings.py)
    mail_chain: bool = False  # mx1's certificate comes from an intermediate CA (certs/mx1-chain.pem)


@dataclass(frozen=True)
class _Checked:
    release: Release
    model: Model
    spec: list[tuple[str, Faults]]
    handoff: MailHandoff
    log_device: LogDevice


def _check_inputs(options: LabOptions) -> _Checked:
    if options.devices < 1:
        raise LabInputError("--devices must be at least 1")
    base = options.base_port
    if base is not None and not 1024 <= base <= 65536 - PORTS_PER_DEVICE * options.devices:
        raise LabInputError(
            f"--base-port must leave room for {PORTS_PER_DEVICE} ports per device between 1024 and 65535"
        )
    if options.fortimanager_packages not in PACKAGE_LAYOUTS:
        raise LabInputError(
            f"--fortimanager-packages must be one of {', '.join(PACKAGE_LAYOUTS)}, "
            f"not {options.fortimanager_packages!r}"
        )
    if options.log_device not in LOG_DEVICES:
        raise LabInputError(
            f"--log-device must be one of {', '.join(LOG_DEVICES)}, not {options.log_device!r}"
        )
    backend = parse_host_port(options.backend, "--backend") if options.backend else None
    return _Checked(
        resolve_release(options.version),
        resolve_model(options.model),
        parse_fault_spec(options.faults or ""),
        MailHandoff(maildir=options.maildir, backend=backend),
        options.log_device,  # type: ignore[arg-type]  # checked against LOG_DEVICES above
    )


def _write(path: Path, text: str, *, secret: bool = False) -> None:
    """Write whole or not at all: a reader (lab.json is rewritten while tools read it) never sees half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Create 0600 from the start: a key must never be readable, even briefly.
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(temporary, 0o600 if secret else 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _yaml(data: Any) -> str:
    yaml = YAML(typ="rt")
    yaml.default_flow_style = False
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    return buffer.getvalue()


@dataclass
class _Served:
    """What one device runs besides its store: HTTPS runner, mail backends, VIP listeners."""

    runner: web.AppRunner
    backends: list[MailBackend | ExternalBackend] = field(default_factory=list)
    listeners: list[tuple[str, str, Literal["starttls", "smtps"], int, VipListener]] = field(
        default_factory=list
    )


@dataclass
class Lab:
    """A running fleet: its devices, the state dir files, and ``stop()``."""

    state_dir: Path
    devices: list[LabDevice]
    site_path: Path
    ca_path: Path
    info: dict[str, Any]
    _served: list[_Served] = field(default_factory=list, repr=False)
    fortimanager: RunningFortiManager | None = None

    def write_info(self) -> None:
        """Rewrite lab.json from the devices as they are now (the faults in force included)."""
        self.info["devices"] = [
            _device_info(d, s, self.info["host"]) for d, s in zip(self.devices, self._served, strict=True)
        ]
        _write(self.state_dir / "lab.json", json.dumps(self.info, indent=2) + "\n", secret=True)

    def device(self, name: str) -> LabDevice:
        return next(d for d in self.devices if d.name == name)

    async def stop(self) -> None:
        """Close every listener and HTTPS site; open sessions are dropped."""
        if self.fortimanager is not None:
            await self.fortimanager.stop()
        listeners = [entry[4] for served in self._served for entry in served.listeners]
        await asyncio.gather(*(listener.stop() for listener in listeners), return_exceptions=True)
        backends = [backend for served in self._served for backend in served.backends]
        await asyncio.gather(*(backend.stop() for backend in backends), return_exceptions=True)
        await asyncio.gather(*(served.runner.cleanup() for served in self._served), return_exceptions=True)
        self._served.clear()


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise LabInputError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _https_context(state_dir: Path, name: str, ca: CertKey) -> ssl.SSLContext:
    pair = issue_cert(ca, name, sans=("127.0.0.1", "localhost"))
    path = state_dir / "certs" / "https" / f"{name}.pem"
    _write(path, pair.cert_pem + pair.key_pem, secret=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(path)
    return context


async def _start_listener(listener: VipListener, port: int, host: str) -> int:
    try:
        return await listener.start(port)
    except OSError as exc:
        raise LabInputError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


async def _serve_device(
    device: LabDevice,
    context: ssl.SSLContext,
    host: str,
    mail: dict[str, CertKey],
    ports: dict[str, int],
    *,
    handoff: MailHandoff,
) -> _Served:
    sock = _listen(host, ports.get("https", 0))
    device.port = sock.getsockname()[1]
    runner = web.AppRunner(
        make_app(device), access_log=None, handle_signals=False, shutdown_timeout=_SHUTDOWN
    )
    try:
        await runner.setup()
        await web.SockSite(runner, sock, ssl_context=context).start()
    except BaseException:
        sock.close()
        await runner.cleanup()
        raise
    served = _Served(runner)
    try:
        await _serve_mail(device, served, host, mail, ports, handoff=handoff)
    except BaseException:
        await _stop_served(served)
        raise
    return served


async def _serve_mail(
    device: LabDevice,
    served: _Served,
    host: str,
    mail: dict[str, CertKey],
    ports: dict[str, int],
    *,
    handoff: MailHandoff,
) -> None:
    for site in MAIL_SITES:
        pair = mail[site.vip]
        backend: MailBackend | ExternalBackend = (
            ExternalBackend(*handoff.backend, hostname=_MAIL_NAMES[site.vip])
            if handoff.backend
            else MailBackend(cert_pem=pair.cert_pem, key_pem=pair.key_pem, host=host, maildir=handoff.maildir)
        )
        served.backends.append(backend)
        await backend.start()
        device.backends[site.vip] = backend
        # An external MTA is reached on its SMTP port only: no implicit-TLS VIP in front of it.
        for mode in _MODES if backend.smtps_port or not handoff.backend else ("starttls",):
            listener = VipListener(device, site.vip, backend, mode=mode, host=host, vdom=site.vdom)
            port = await _start_listener(listener, ports.get(f"{site.vip}/{mode}", 0), host)
            served.listeners.append((site.vip, site.vdom, mode, port, listener))


async def _stop_served(served: _Served) -> None:
    await asyncio.gather(*(entry[4].stop() for entry in served.listeners), return_exceptions=True)
    await asyncio.gather(*(backend.stop() for backend in served.backends), return_exceptions=True)
    await served.runner.cleanup()


def _device_info(device: LabDevice, served: _Served, host: str) -> dict[str, Any]:
    smtp = [
        {"vip": vip, "vdom": vdom, "host": host, "port": port, "mode": mode}
        for vip, vdom, mode, port, _ in served.listeners
    ]
    return {
        "name": device.name,
        "url": device.url,
        "token": device.token,
        "username": device.username,
        "password": device.password,
        "vdoms": list(device.store.vdoms),
        "version": str(device.version),
        "model": device.model.name,
        "faults": device.current_faults().to_json(),
        "smtp": smtp,
    }


def _site(info: dict[str, Any]) -> dict[str, Any]:
    devices = []
    for dev in info["devices"]:
        port = next(s["port"] for s in dev["smtp"] if s["vip"] == "vip-mx1" and s["mode"] == "starttls")
        probe = {
            "host": "127.0.0.1",
            "port": port,
            "mode": "starttls",
            "server_name": _MAIL_NAMES["vip-mx1"],
            "timeout": 5,
            "retries": 2,
            "retry_delay": 0.5,
            "transaction": {"mail_from": "probe@example.test", "rcpt_to": "postmaster@example.test"},
            # The lab's backend can confirm receipt, which catches "250 but never delivered" (F17).
            "confirm_delivery": "lab",
        }
        server = {
            "name": "mx1",
            "policy": {"vip": "vip-mx1"},
            "certificate": {"cert": "certs/mx1.pem", "key": "certs/mx1.key"},
            "emailfilter_profile": "mail-inbound",
            "ssl_profile": "protect-mx1",
            "protocol_options": "smtp-inbound",
            "probe": probe,
            "fallback": ["certificate-inspection"],
        }
        token = f"${{file:tokens/{dev['name']}.token}}"
        devices.append({"name": dev["name"], "url": dev["url"], "token": token, "mail_servers": [server]})
    site = {
        "version": 1,
        "defaults": {"vdom": "root", "verify_tls": "ca.pem", "timeout": 10},
        "rollout": {"canary": 1, "batch_size": 10, "concurrency": 10, "max_failures": 1},
        "devices": devices,
    }
    return route_site(site, info["fortimanager"]) if "fortimanager" in info else site


def _inventory(state_dir: Path, info: dict[str, Any]) -> CommentedMap:
    """``hosts.yml``: the lab as an Ansible inventory that ``playbooks/`` use as-is.

    Laid out as a shop would keep it: what differs per device (URL, token file, the VIP's probe
    port) in host vars, the mail server's shape (the same as in ``site.yml``) in the group vars
    of ``fortigates``. The collection's module runs in the controller's Ansible process, so no
    interpreter is named here; it shares the CLI's journal directory for the lab, so both see
    each other's runs and lock.
    """
    server = copy.deepcopy(_site(info)["devices"][0]["mail_servers"][0])
    certificate = server["certificate"]
    server["certificate"] = {key: str(state_dir / path) for key, path in certificate.items()}
    server["probe"]["port"] = "{{ fortiauto_mx1_port }}"
    fallback = list(server["fallback"])
    server["fallback"] = "{{ fortiauto_fallback }}"
    hosts = {}
    for dev in info["devices"]:
        port = next(s["port"] for s in dev["smtp"] if s["vip"] == "vip-mx1" and s["mode"] == "starttls")
        hosts[dev["name"]] = {
            "fortiauto_url": dev["url"],
            "fortiauto_token_file": str(state_dir / "tokens" / f"{dev['name']}.token"),
            "fortiauto_vdom": "root",
            "fortiauto_mx1_port": port,
            "ansible_connection": "local",
        }
    group_vars = {
        "fortiauto_verify_tls": str(state_dir / "ca.pem"),
        "fortiauto_journal_dir": str(state_dir / ".fortiauto" / "journal"),
        # A host var fortiauto_fallback: [] makes that device roll back and fail instead.
        "fortiauto_fallback": fallback,
        "fortiauto_mail_servers": [server],
    }
    inventory = CommentedMap({"all": {"children": {"fortigates": {"vars": group_vars, "hosts": hosts}}}})
    inventory.yaml_set_start_comment(
        "Written by `fortiauto lab up`: the lab's devices as an Ansible inventory.\n"
        f"ansible-playbook -i {state_dir / 'hosts.yml'} playbooks/site.yml"
    )
    return inventory


def _write_state(state_dir: Path, info: dict[str, Any], ca: CertKey, mail: dict[str, CertKey]) -> Path:
    _write(state_dir / "ca.pem", ca.cert_pem)
    _write(state_dir / "ca.key", ca.key_pem, secret=True)  # so a restart keeps the same CA
    for vip, pair in mail.items():
        short = _MAIL_NAMES[vip].split(".")[0]
        leaf, *chain = split_pem(pair.cert_pem)
        _write(state_dir / "certs" / f"{short}.pem", leaf)
        if chain:
            # What the mail server sends after its leaf: the intermediates a FortiGate must import too.
            _write(state_dir / "certs" / f"{short}-chain.pem", "".join(chain))
        else:
            (state_dir / "certs" / f"{short}-chain.pem").unlink(missing_ok=True)  # an earlier --mail-chain's
        _write(state_dir / "certs" / f"{short}.key", pair.key_pem, secret=True)
    for dev in info["devices"]:
        _write(state_dir / "tokens" / f"{dev['name']}.token", dev["token"] + "\n", secret=True)
    if "fortimanager" in info:
        _write(state_dir / "tokens" / "fortimanager.token", info["fortimanager"]["token"] + "\n", secret=True)
    _write(state_dir / "lab.json", json.dumps(info, indent=2) + "\n", secret=True)
    _write(state_dir / "hosts.yml", _yaml(_inventory(state_dir, info)))
    site_path = state_dir / "site.yml"
    _write(
        site_path,
        "# Written by `fortiauto lab up`: the lab's devices, ready for fortiauto.\n" + _yaml(_site(info)),
    )
    return site_path


def _pki(state_dir: Path, *, chain: bool = False) -> tuple[CertKey, dict[str, CertKey]]:
    """The lab CA and the mail servers' certificates: the previous run's when the state dir has them.

    With ``chain``, mx1's certificate is issued by an intermediate CA (kept as ``certs/mail-ca.*``)
    and its ``cert_pem`` carries leaf + intermediate, as a real mail server presents them.
    """
    ca = load_ca(state_dir) or make_ca("fortiauto lab CA")
    mail = {}
    for vip, name in _MAIL_NAMES.items():
        short = name.split(".")[0]
        # mx1 is RSA (the common case on real mail servers), mx2 EC.
        key_type: Literal["rsa", "ec"] = "rsa" if vip == "vip-mx1" else "ec"
        if chain and vip == "vip-mx1":
            mail[vip] = _chained_pair(state_dir, ca, name, short, key_type)
            continue
        kept = load_mail_pair(state_dir, short, ca)
        mail[vip] = kept or issue_cert(ca, name, sans=(name,), key_type=key_type)
    return ca, mail


def _chained_pair(
    state_dir: Path, ca: CertKey, name: str, short: str, key_type: Literal["rsa", "ec"]
) -> CertKey:
    intermediate = load_mail_pair(state_dir, "mail-ca", ca) or make_ca("fortiauto lab mail CA", parent=ca)
    _write(state_dir / "certs" / "mail-ca.pem", intermediate.cert_pem)
    _write(state_dir / "certs" / "mail-ca.key", intermediate.key_pem, secret=True)
    leaf = load_mail_pair(state_dir, short, intermediate) or issue_cert(
        intermediate, name, sans=(name,), key_type=key_type
    )
    return CertKey(split_pem(leaf.cert_pem)[0] + intermediate.cert_pem, leaf.key_pem)


def _ports(options: LabOptions, index: int, previous: Remembered | None) -> dict[str, int]:
    if options.base_port is not None:
        return port_layout(index, options.base_port)
    return dict(previous.ports) if previous is not None else {}


def _serial(model: Model, number: int) -> str:
    # 16 characters led by the model, as real serials are (FGVM..., FGT60F...).
    prefix = "FGVM" if model.code.startswith("FGVM") else model.code[:6]
    return f"{prefix}LAB{number:0{13 - len(prefix)}d}"


def _info(options: LabOptions, checked: _Checked, state_dir: Path) -> dict[str, Any]:
    return {
        "ca": str(state_dir / "ca.pem"),
        "host": options.host,
        "version": str(checked.release),
        "model": checked.model.name,
        "strict": options.strict,
        "mail_chain": options.mail_chain,
        "faults": options.faults or "",
        "base_port": options.base_port,
        "log_device": options.log_device,
        "maildir": str(options.maildir) if options.maildir else None,
        "backend": options.backend,
        "devices": [],
    }


def _managed(options: LabOptions) -> list[tuple[str, Faults]]:
    """With ``--fortimanager`` every device says so in its central-management config."""
    return parse_fault_spec("*:fortimanager-managed") if options.fortimanager else []


async def start_lab(state_dir: Path, **kwargs: Any) -> Lab:
    """Start mock FortiGates (``LabOptions`` fields as keywords) and write the state dir.

    With a state dir of an earlier run, every device comes back with its token, password and
    ports (``persist.py``) unless ``base_port`` lays the ports out anew.

    Raises:
        LabInputError: a bad option (before anything starts), or a port that is taken.
    """
    options = LabOptions(**kwargs)
    checked = _check_inputs(options)
    state_dir = Path(state_dir).resolve()
    previous = remembered(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    ca, mail = _pki(state_dir, chain=options.mail_chain)
    certs = make_factory_certs()
    shared = make_shared_cert(certs.ca_ssl)
    template = seed_template(build_schema(checked.release, checked.model, strict=options.strict), certs)
    use_log_device(template, checked.log_device)
    lab = Lab(state_dir, [], state_dir / "site.yml", state_dir / "ca.pem", _info(options, checked, state_dir))
    try:
        for index in range(options.devices):
            name = f"fgt-{index + 1:03d}"
            kept = previous.get(name)
            device = LabDevice(
                name,
                version=checked.release,
                model=checked.model,
                serial=_serial(checked.model, index + 1),
                template=template,
                certs=certs,
                faults=faults_for_device(_managed(options) + checked.spec, name),
                token=kept.token if kept else None,
                password=kept.password if kept else None,
                shared_cert=shared,
            )
            context = _https_context(state_dir, name, ca)
            lab._served.append(
                await _serve_device(
                    device, context, options.host, mail, _ports(options, index, kept), handoff=checked.handoff
                )
            )
            lab.devices.append(device)
            device.on_faults_changed = lab.write_info
        lab.info["devices"] = [
            _device_info(d, s, options.host) for d, s in zip(lab.devices, lab._served, strict=True)
        ]
        if options.fortimanager:
            lab.fortimanager = await start_fortimanager(
                lab.devices,
                ca=ca,
                cert_dir=state_dir / "certs" / "https",
                host=options.host,
                packages=options.fortimanager_packages,
            )
            lab.info["fortimanager"] = lab.fortimanager.info()
        lab.site_path = _write_state(state_dir, lab.info, ca, mail)
    except BaseException:
        await lab.stop()
        raise
    return lab


def run_lab(state_dir: Path, **kwargs: Any) -> int:
    """``fortiauto lab up``: serve until SIGINT/SIGTERM after printing ``lab ready: <site.yml>``.

    Raises:
        LabInputError: a bad option, before anything starts.
    """
    _check_inputs(LabOptions(**kwargs))

    async def main() -> None:
        lab = await start_lab(state_dir, **kwargs)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        print(f"lab ready: {lab.site_path}", flush=True)
        try:
            await stop.wait()
        finally:
            await lab.stop()

    asyncio.run(main())
    return 0


class LabThread:
    """A lab on its own event loop in a background thread (``with LabThread(dir) as lab:``)."""

    def __init__(self, state_dir: Path, **start_lab_kwargs: Any) -> None:
        self._state_dir = state_dir
        self._kwargs = start_lab_kwargs
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="fortiauto-lab", daemon=True)
        self.lab: Lab | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()
        self._loop.close()

    def call(self, factory: Callable[[], Awaitable[Any]], timeout: float = 60) -> Any:
        """Run a coroutine on the lab's loop and wait for its result (thread-safe)."""

        async def wrapper() -> Any:
            return await factory()

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(timeout)

    def __enter__(self) -> Lab:
        self._thread.start()
        try:
            self.lab = self.call(lambda: start_lab(self._state_dir, **self._kwargs), timeout=120)
        except BaseException:
            self._shutdown()
            raise
        assert self.lab is not None
        return self.lab

    def __exit__(self, *exc_info: object) -> None:
        if self.lab is not None:
            lab = self.lab
            self.call(lab.stop, timeout=60)
        self._shutdown()

    def _shutdown(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
