"""One mock FortiGate: its config store, credentials, sessions, faults, request log and email filter log.

The REST app (``app.py``) serves a ``LabDevice``; the SMTP data plane reads it through
``fortiauto_lab.view.DeviceView``: ``inspection(vip)`` turns the policy bound to a VIP
into an ``Inspection`` (which SSL mode, proxy or flow, UTM, whether SMTP is logged), and
``log_emailfilter`` appends the log lines the FortiOS log API serves. Fault counters
("the Nth write from when the fault was set") live here so the app stays stateless, and so do
the device states set like faults: FortiManager management and the HA role are written into
the config (``system central-management``, ``system ha``) as a real unit holds them, and
``write_refusal`` says which writes such a unit refuses (an HA secondary, a read-only token).
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from fortiauto_lab.antispam import SpamFilter
from fortiauto_lab.faults import Faults
from fortiauto_lab.hardware import DEFAULT_MODEL, Model
from fortiauto_lab.pki import CertKey, chain_for, names_of
from fortiauto_lab.release import Release, build_number
from fortiauto_lab.revisions import Revisions
from fortiauto_lab.rules import PROFILE_FIELDS, policy_based
from fortiauto_lab.seed import FactoryCerts
from fortiauto_lab.states import make_shared_cert, shape_store
from fortiauto_lab.store import ConfigStore
from fortiauto_lab.view import Inspection, SslMode

__all__ = ["LabDevice", "MessageSource", "RequestLog", "Session", "build_number"]

_SHAPING = ("ngfw_policy_based", "profile_group", "shared_ssl_profile", "hairpin")
_MAX_LOG = 10_000  # email filter log lines kept, as a FortiGate's memory log rolls over
_MAX_REQUESTS = 10_000
_HA = "system/ha"
_CENTRAL = "system/central-management"
# The other member of the emulated active-passive pair, and the FortiManager that manages a unit.
_HA_GROUP = {"group-id": 7, "group-name": "fortiauto-lab", "hbdev": '"port9" 50', "session-pickup": "enable"}
_HA_PRIORITY = {"primary": 200, "secondary": 100}
_FORTIMANAGER = {"type": "fortimanager", "fmg": "192.0.2.40", "serial-number": "FMG-VM0000000001"}

WriteFault = Literal["http500", "reset"]
HaRole = Literal["primary", "secondary"]
WriteRefusal = Literal["ha-secondary", "read-only"]


class MessageSource(Protocol):
    """What the data plane's mail backend offers the control API (``MailBackend``)."""

    host: str
    hostname: str
    smtp_port: int
    smtps_port: int
    messages: list[dict[str, Any]]


@dataclass
class Session:
    """A logged-in admin session: cookie (``/logincheck``) or session key (``/api/v2/authentication``)."""

    cookie: str
    csrf: str
    key: str


@dataclass
class RequestLog:
    """What the control API reports about the API traffic a device received."""

    total: int = 0
    writes: int = 0
    log: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=_MAX_REQUESTS))

    def add(self, *, method: str, path: str, query: str, status: int, write: bool) -> None:
        self.total += 1
        self.writes += int(write)
        self.log.append(
            {"t": time.monotonic(), "method": method, "path": path, "query": query, "status": status}
        )

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "writes": self.writes, "log": list(self.log)}

    def clear(self) -> None:
        self.total = 0
        self.writes = 0
        self.log.clear()


def _overlap(policy: dict[str, Any], security: dict[str, Any], attr: str) -> bool:
    """Whether a security policy's names for ``attr`` cover the policy's (``any`` / ``all`` cover all)."""
    names = {d["name"] for d in security.get(attr, [])}
    return bool(names & ({d["name"] for d in policy.get(attr, [])} | {"any", "all"}))


class LabDevice:
    """A mock FortiGate (implements ``fortiauto_lab.view.DeviceView``)."""

    def __init__(
        self,
        name: str,
        *,
        version: Release,
        serial: str,
        template: ConfigStore,
        certs: FactoryCerts,
        faults: Faults | None = None,
        username: str = "admin",
        model: Model = DEFAULT_MODEL,
        token: str | None = None,
        password: str | None = None,
        shared_cert: CertKey | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.model = model
        self.build = build_number(version)
        self.serial = serial
        self.username = username
        self.password = password or secrets.token_hex(12)
        self.token = token or secrets.token_hex(15)
        self.port = 0
        self._template = template
        self._certs = certs
        self._shared_cert = shared_cert or make_shared_cert(certs.ca_ssl)
        self._initial_faults = faults or Faults()
        self._faults = self._initial_faults
        self.store = self._fresh_store()
        self.revisions = Revisions()
        self.requests = RequestLog()
        self.emailfilter_log: deque[dict[str, str]] = deque(maxlen=_MAX_LOG)
        self.backends: dict[str, MessageSource] = {}  # vip -> mail backend (wired by server.py)
        self.hits: dict[tuple[str, int], int] = {}
        self._sessions: dict[str, Session] = {}
        self._api_requests = 0
        self._writes = 0
        self._recent: deque[float] = deque()
        self.on_faults_changed: Callable[[], None] | None = None  # server.py rewrites lab.json
        self._sync_states()

    def __repr__(self) -> str:
        return f"LabDevice({self.name!r}, version={self.version}, port={self.port})"

    def _fresh_store(self) -> ConfigStore:
        store = self._template.copy(uuid_seed=self.serial)
        store.seed(store.vdoms[0], "system/global", {"hostname": self.name, "alias": self.name})
        shape_store(
            store,
            policy_based=self._faults.ngfw_policy_based,
            profile_group=self._faults.profile_group,
            shared_ssl_profile=self._faults.shared_ssl_profile,
            shared_cert=self._shared_cert,
            hairpin=self._faults.hairpin is not None,
        )
        return store

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    # --- DeviceView --------------------------------------------------------------------

    def current_faults(self) -> Faults:
        return self._faults

    def inspection_ca(self) -> tuple[str, str]:
        return self._certs.ca_ssl.cert_pem, self._certs.ca_ssl.key_pem

    def log_emailfilter(self, fields: dict[str, str]) -> None:
        record = dict(fields)
        record.setdefault("vd", self._vdom_of_backend_port(record.get("dstport", "")))
        record.setdefault("devname", self.name)
        record.setdefault("devid", self.serial)
        self.emailfilter_log.append(record)

    def _vdom_of_backend_port(self, port: str) -> str:
        for vip, backend in self.backends.items():
            if port in (str(backend.smtp_port), str(backend.smtps_port)):
                return self._vdom_of_vip(vip) or self.store.vdoms[0]
        return self.store.vdoms[0]

    def _vdom_of_vip(self, vip: str) -> str | None:
        for vdom in self.store.vdoms:
            if self.store.exists(vdom, "firewall/vip", vip):
                return vdom
        return None

    def inspection(self, vip: str, source: str | None = None) -> Inspection:
        """How a new SMTP session to ``vip`` from ``source`` is treated: the first matching accept policy.

        Called by the data plane once per connection, so it also counts the policy's hits.
        """
        for vdom in self.store.vdoms:
            ingress = self._ingress(vdom, vip, source)
            for policy in self.store.members(vdom, "firewall/policy"):
                if self._matches(vdom, policy, vip) and self._ingress_matches(policy, ingress):
                    key = (vdom, int(policy["policyid"]))
                    self.hits[key] = self.hits.get(key, 0) + 1
                    return self._inspect(vdom, policy)
        return Inspection(policyid=None)

    def _ingress(self, vdom: str, vip: str, source: str | None) -> tuple[str, bool] | None:
        """(the VIP's external interface, whether ``source`` comes in on it), or None: not modelled.

        Without the ``hairpin`` state every connection comes in on the external interface and no
        policy is matched on its interface (the lab's behaviour before that state).
        """
        outside = self._faults.hairpin
        if outside is None or not self.store.exists(vdom, "firewall/vip", vip):
            return None
        extintf = str(self.store.get(vdom, "firewall/vip", vip).get("extintf", "any"))
        return extintf, source == outside

    @staticmethod
    def _ingress_matches(policy: dict[str, Any], ingress: tuple[str, bool] | None) -> bool:
        if ingress is None:
            return True
        extintf, from_outside = ingress
        names = {d["name"] for d in policy.get("srcintf", [])}
        if "any" in names:
            return True
        if from_outside:
            return extintf in names or extintf == "any"
        return bool(names - {extintf})  # an inside host: any interface but the external one

    def _matches(self, vdom: str, policy: dict[str, Any], vip: str) -> bool:
        if policy.get("status") != "enable" or policy.get("action") != "accept":
            return False
        names = {d["name"] for d in policy.get("dstaddr", [])}
        if vip in names:
            return True
        # A VIP may also sit inside an address group the policy names.
        groups = [
            self.store.get(vdom, "firewall/addrgrp", n)
            for n in names
            if self.store.exists(vdom, "firewall/addrgrp", n)
        ]
        return any(vip in {m["name"] for m in g.get("member", [])} for g in groups)

    def _inspect(self, vdom: str, policy: dict[str, Any]) -> Inspection:
        applied = self._applied_profiles(vdom, policy)
        if applied is None:
            return Inspection(policyid=None)  # policy-based: no security policy lets it through
        proxy = applied.get("inspection-mode") == "proxy"
        utm_on = applied.get("utm-status") == "enable"
        vip = next(iter(n["name"] for n in policy.get("dstaddr", [])), "")
        ssl_mode, server_cert = self._ssl_mode(vdom, str(applied.get("ssl-ssh-profile", "")), vip)
        emailfilter = str(applied.get("emailfilter-profile", ""))
        checks = self._spam_checks(vdom, emailfilter)
        logs = proxy and utm_on and self._logs_smtp(vdom, emailfilter)
        if self.store.schema.strict and not checks:
            # Whether log-all logs with spam filtering off is not documented: the conservative
            # reading is that a profile that performs no check inspects (and logs) nothing.
            logs = False
        return Inspection(
            policyid=int(policy["policyid"]),
            ssl_mode=ssl_mode,
            server_cert=server_cert,
            proxy=proxy,
            utm=utm_on and any(applied.get(f) for f in PROFILE_FIELDS),
            logs_smtp=logs,
            spam_checks=checks,
            spam_filter=self._spam_filter(vdom, emailfilter, checks) if proxy and utm_on else None,
        )

    def _applied_profiles(self, vdom: str, policy: dict[str, Any]) -> dict[str, Any] | None:
        """The profiles that act on the session: the policy's, its profile group's, or a security policy's."""
        applied = dict(policy)
        if policy_based(self.store, vdom):
            security = self._security_policy(vdom, policy)
            if security is None:
                return None
            applied = {k: v for k, v in policy.items() if k not in PROFILE_FIELDS}
            applied |= {k: security.get(k) for k in PROFILE_FIELDS if security.get(k)}
            applied |= {"utm-status": "enable", "inspection-mode": "flow"}
            source = security
        else:
            source = policy
        if source.get("profile-type") == "group":
            group_name = str(source.get("profile-group", ""))
            if self.store.exists(vdom, "firewall/profile-group", group_name):
                group = self.store.get(vdom, "firewall/profile-group", group_name)
                applied = {k: v for k, v in applied.items() if k not in PROFILE_FIELDS}
                applied |= {k: v for k, v in group.items() if k != "name" and v}
        return applied

    def _security_policy(self, vdom: str, policy: dict[str, Any]) -> dict[str, Any] | None:
        # Which security policy a session matches after its SSL policy is not modelled in full:
        # the first enabled accept rule on the same interfaces naming the same destination, or "all".
        for security in self.store.members(vdom, "firewall/security-policy"):
            if security.get("status") != "enable" or security.get("action") != "accept":
                continue
            if all(_overlap(policy, security, attr) for attr in ("srcintf", "dstintf", "dstaddr")):
                return security
        return None

    def _spam_checks(self, vdom: str, name: str) -> tuple[str, ...]:
        """The anti-spam checks the email filter performs: its ``options`` when spam filtering is on."""
        if not name or not self.store.exists(vdom, "emailfilter/profile", name):
            return ()
        profile = self.store.get(vdom, "emailfilter/profile", name)
        if profile.get("spam-filtering") != "enable":
            return ()
        return tuple(str(profile.get("options", "")).split())

    def _spam_filter(self, vdom: str, name: str, checks: tuple[str, ...]) -> SpamFilter | None:
        """What the email filter does with SMTP mail it judges (``antispam.py``); None: it judges none.

        The lab's email filter inspects SMTP in proxy mode, with the proxy feature set where the
        unit has one (as for logging, ``_logs_smtp``).
        """
        if not checks or not self._proxy_feature_set(vdom, name):
            return None
        profile = self.store.get(vdom, "emailfilter/profile", name)
        smtp = profile.get("smtp", {})
        action = smtp.get("action", "discard")
        return SpamFilter(
            checks=checks,
            action=action if action in ("pass", "tag", "discard") else "discard",
            tag_type=tuple(str(smtp.get("tag-type", "subject spaminfo")).split()),
            tag_msg=str(smtp.get("tag-msg", "Spam")),
            log=profile.get("spam-log", "enable") == "enable",
            profile=name,
        )

    def _proxy_feature_set(self, vdom: str, name: str) -> bool:
        has_feature_set = "feature-set" in self.store.schema.spec("emailfilter/profile").fields
        return (
            not has_feature_set
            or self.store.get(vdom, "emailfilter/profile", name).get("feature-set") == "proxy"
        )

    def _ssl_mode(self, vdom: str, name: str, vip: str = "") -> tuple[SslMode, tuple[str, str] | None]:
        if not name or not self.store.exists(vdom, "firewall/ssl-ssh-profile", name):
            return "none", None
        profile = self.store.get(vdom, "firewall/ssl-ssh-profile", name)
        smtp_deep = (
            profile.get("smtps", {}).get("status") == "deep-inspection"
            or profile.get("ssl", {}).get("inspect-all") == "deep-inspection"
        )
        if smtp_deep and profile.get("server-cert-mode") == "replace":
            return "replace", self._server_cert(vdom, profile.get("server-cert"), vip)
        if smtp_deep:
            return "resign", None
        if "certificate-inspection" in (
            profile.get("https", {}).get("status"),
            profile.get("ssl", {}).get("inspect-all"),
        ):
            return "certificate", None
        return "none", None

    def _server_cert(self, vdom: str, value: Any, vip: str) -> tuple[str, str] | None:
        """The certificate presented (leaf + imported CA chain) and its key, in replace mode.

        6.4 stores one name, 7.0+ a list of {name}: of several, the one for the mail server's
        name is presented (as a unit matches the server certificate), else the first.
        """
        names = [v["name"] for v in value] if isinstance(value, list) else [value]
        pairs = [p for p in (self._local_pair(vdom, n) for n in names if isinstance(n, str)) if p]
        if not pairs:
            return None
        backend = self.backends.get(vip)
        wanted = backend.hostname.lower() if backend is not None else ""
        leaf, key = next((p for p in pairs if wanted in names_of(p[0])), pairs[0])
        cas = [str(ca["ca"]) for ca in self.store.members(vdom, "vpn.certificate/ca") if ca.get("ca")]
        return leaf + "".join(chain_for(leaf, cas)), key

    def _local_pair(self, vdom: str, name: str) -> tuple[str, str] | None:
        if not self.store.exists(vdom, "vpn.certificate/local", name):
            return None
        cert = self.store.get(vdom, "vpn.certificate/local", name)
        if not cert.get("certificate") or not cert.get("private-key"):
            return None
        return str(cert["certificate"]), str(cert["private-key"])

    def _logs_smtp(self, vdom: str, name: str) -> bool:
        if not name or not self.store.exists(vdom, "emailfilter/profile", name):
            return False
        profile = self.store.get(vdom, "emailfilter/profile", name)
        smtp = profile.get("smtp", {})
        logging_on = "enable" in (smtp.get("log-all"), smtp.get("log"))
        has_feature_set = "feature-set" in self.store.schema.spec("emailfilter/profile").fields
        proxy_set = not has_feature_set or profile.get("feature-set") == "proxy"
        return logging_on and proxy_set

    # --- sessions ----------------------------------------------------------------------

    def login(self, username: str, password: str) -> Session | None:
        if not (
            secrets.compare_digest(username.encode(), self.username.encode())
            and secrets.compare_digest(password.encode(), self.password.encode())
        ):
            return None
        session = Session(
            cookie=f"Era%3D0%26Payload%3D{secrets.token_hex(24)}%26AuthHash%3D{secrets.token_hex(8)}",
            csrf=secrets.token_hex(16).upper(),
            key=secrets.token_hex(15),
        )
        self._sessions[session.cookie] = session
        return session

    def session_by_cookie(self, cookie: str) -> Session | None:
        return self._sessions.get(cookie)

    def session_by_key(self, key: str) -> Session | None:
        return next((s for s in self._sessions.values() if secrets.compare_digest(s.key, key)), None)

    def logout(self, session: Session) -> None:
        self._sessions.pop(session.cookie, None)

    def token_valid(self, token: str) -> bool:
        if not secrets.compare_digest(token.encode(), self.token.encode()):
            return False
        limit = self._faults.token_expiry_after
        return limit is None or self._api_requests <= limit

    # --- faults ------------------------------------------------------------------------

    def set_faults(self, faults: Faults) -> None:
        """Replace the faults; counted faults count from now; device states follow at once."""
        reshape = any(getattr(faults, f) != getattr(self._faults, f) for f in _SHAPING)
        changed = faults != self._faults
        self._faults = faults
        if reshape:
            self.store = self._fresh_store()
        self._api_requests = 0
        self._writes = 0
        self._recent.clear()
        self._sync_states()
        if changed:
            self._faults_changed()

    def _faults_changed(self) -> None:
        # lab.json holds every device: rewriting it on each of 1,000 resets was quadratic (half
        # the lab's CPU in a 1,000-device benchmark), so only a real change rewrites it.
        if self.on_faults_changed is not None:
            self.on_faults_changed()

    # --- device states -----------------------------------------------------------------

    @property
    def ha_role(self) -> HaRole | None:
        """This unit's role in the emulated a-p pair, or None when standalone."""
        if self._faults.ha_secondary:
            return "secondary"
        return "primary" if self._faults.ha_primary else None

    @property
    def peer_serial(self) -> str:
        # Same length and family as the unit's own serial, so it reads like a real twin.
        return f"{self.serial[:7]}P{self.serial[8:]}"

    def ha_members(self) -> list[dict[str, Any]]:
        """Both members of the pair, primary first (``monitor/system/ha-peer`` rows, without flags)."""
        role = self.ha_role
        if role is None:
            return [{"serial_no": self.serial, "hostname": self.name, "priority": 128, "primary": True}]
        me = {"serial_no": self.serial, "hostname": self.name, "priority": _HA_PRIORITY[role]}
        peer_role: HaRole = "secondary" if role == "primary" else "primary"
        peer = {
            "serial_no": self.peer_serial,
            "hostname": f"{self.name}-{'b' if role == 'primary' else 'a'}",
            "priority": _HA_PRIORITY[peer_role],
        }
        pair = [(me, role), (peer, peer_role)]
        pair.sort(key=lambda item: item[1] != "primary")
        return [member | {"primary": which == "primary"} for member, which in pair]

    def write_refusal(self, principal_kind: str) -> WriteRefusal | None:
        """Why this device refuses a write from this caller, if it does."""
        if self.ha_role == "secondary":
            return "ha-secondary"
        if principal_kind == "token" and self._faults.read_only_token:
            return "read-only"
        return None

    def _sync_states(self) -> None:
        """Write the HA and central-management config the current states imply (seed-level, no revision)."""
        vdom = self.store.vdoms[0]
        schema = self.store.schema
        role = self.ha_role
        ha = schema.spec(_HA).fresh()
        if role is not None:
            ha |= {"mode": "a-p", "priority": _HA_PRIORITY[role], **_HA_GROUP}
        central = schema.spec(_CENTRAL).fresh()
        if self._faults.fortimanager_managed:
            central |= _FORTIMANAGER
        for path, wanted in ((_HA, ha), (_CENTRAL, central)):
            if self.store.singleton(vdom, path) != wanted:
                self.store.seed(vdom, path, wanted)

    def count_api_request(self) -> bool:
        """Count one API request; False when it breaks the rate limit (answer 429)."""
        self._api_requests += 1
        limit = self._faults.rate_limit
        if limit is None:
            return True
        now = time.monotonic()
        while self._recent and now - self._recent[0] >= 1.0:
            self._recent.popleft()
        self._recent.append(now)
        return len(self._recent) <= limit

    def next_write_fault(self) -> WriteFault | None:
        """Count one write; which fault (if any) hits it."""
        self._writes += 1
        if self._faults.http500_on_write is not None and self._writes == self._faults.http500_on_write:
            return "http500"
        if self._faults.reset_on_write is not None and self._writes == self._faults.reset_on_write:
            return "reset"
        return None

    # --- control -----------------------------------------------------------------------

    def messages(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for vip, backend in self.backends.items():
            out.extend({"vip": vip, **m} for m in backend.messages)
        return sorted(out, key=lambda m: str(m.get("received_at", "")))

    def reset(self) -> None:
        """Back to the seed: config, sessions, logs, messages, counters and the launch faults."""
        changed = self._faults != self._initial_faults
        self._faults = self._initial_faults
        self.store = self._fresh_store()
        self.revisions = Revisions()
        self._sessions.clear()
        self.requests.clear()
        self.emailfilter_log.clear()
        self.hits.clear()
        for backend in self.backends.values():
            backend.messages.clear()
        self.set_faults(self._initial_faults)
        if changed:
            self._faults_changed()
