"""The site file's shape: pydantic v2 models of ``site.yml`` (devices, mail servers, probe, window, rollout).

First stage of the pipeline (site -> plan -> apply -> probe -> commit/rollback -> report).
The models enforce the rules one object can check on its own; ``siteload.load_site`` builds
them from a file (line numbers, secret references, defaults, certificate checks).
"""

from __future__ import annotations

import ipaddress
import re
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    SerializerFunctionWrapHandler,
    Tag,
    field_serializer,
    field_validator,
    model_validator,
)

from fortiauto.site.rules import (
    EmailfilterProfileName,
    Label,
    OneLine,
    PolicyName,
    ProtocolOptionsName,
    Seconds,
    SslProfileName,
    VdomName,
    VipName,
    password_problem,
    pin_sha256,
    rule,
    token_problem,
    username_problem,
)

__all__ = [
    "CertificateSpec",
    "ChangeWindow",
    "DeliveryConfirm",
    "Device",
    "DeviceFortiManager",
    "FortiManagerSpec",
    "ImapConfirm",
    "MailServer",
    "PolicyRef",
    "ProbeSpec",
    "ProbeTransaction",
    "ProbeVia",
    "Rollout",
    "Site",
]

SUPPORTED_VERSIONS = (1,)

ProbeMode = Literal["plain", "starttls", "smtps", "opportunistic"]
FallbackRung = Literal["certificate-inspection"]

_rule = rule  # site/rules.py: a SITE_RULE error, optionally pointing at a key inside the model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProbeTransaction(_Strict):
    """A test message the probe sends through the VIP (MAIL FROM / RCPT TO).

    Without ``mail_from`` the probe derives one in the recipient's domain (probe/sender.py),
    a domain that has an MX record, so FortiOS's return-email DNS check passes.
    """

    mail_from: OneLine | None = None
    rcpt_to: OneLine


_IMAP_PORTS = {"imap": 143, "imaps": 993}


class ImapConfirm(_Strict):
    """The mailbox where a delivered probe message lands, read over IMAP (probe/imap.py).

    ``imap://`` upgrades with STARTTLS (never falls back to clear text), ``imaps://`` is
    implicit TLS; ``verify_tls`` is on by default and may name a CA bundle instead.
    """

    url: str
    username: str = Field(min_length=1)
    password: SecretStr
    mailbox: str = Field("INBOX", min_length=1)
    timeout: Seconds = Field(60.0, gt=0, le=3600)
    verify_tls: bool | Path = True

    @field_validator("url")
    @classmethod
    def _imap_url(cls, url: str) -> str:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise _rule("the URL's port must be a number between 1 and 65535") from None
        if parts.scheme not in _IMAP_PORTS:
            raise _rule("the URL must start with imaps:// (implicit TLS) or imap:// (STARTTLS)")
        if not parts.hostname:
            raise _rule("the URL has no host")
        if parts.username is not None or parts.password is not None:
            raise _rule("credentials do not belong in the URL; use username and password")
        if port == 0 or parts.path not in ("", "/") or parts.query:
            raise _rule("give only scheme, host and port, like imaps://mail.example.net:993")
        return url

    @field_validator("verify_tls", mode="before")
    @classmethod
    def _verify_shape(cls, value: object) -> bool | Path:
        if isinstance(value, bool):
            return value
        if isinstance(value, str | Path) and str(value):
            return Path(value)
        raise _rule("expected true, false or the path of a CA bundle")

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or _IMAP_PORTS[parts.scheme]

    @property
    def implicit_tls(self) -> bool:
        return urlsplit(self.url).scheme == "imaps"


def _confirmer_kind(value: object) -> str | None:
    if isinstance(value, ImapConfirm | dict):
        return "imap"
    return "plugin" if isinstance(value, str) else None


def _confirmer_names() -> list[str]:
    # Names are plugins' entry points in fortiauto.delivery (the mock lab's is "lab").
    from fortiauto.plugins import DELIVERY_GROUP, plugin_names  # noqa: PLC0415 - plugins load typer

    return plugin_names(DELIVERY_GROUP)


def _installed_confirmer(name: str) -> str:
    from fortiauto.plugins import install_hint  # noqa: PLC0415 - plugins load typer

    names = _confirmer_names()
    if name in names:
        return name
    shown = repr(name) if len(name) <= 40 else "this value"
    expected = ", ".join([*names, "{imap: {url, ...}}"])
    raise _rule(f"unknown delivery confirmer {shown}; expected one of: {expected}{install_hint(name)}")


def _unwrap_imap(value: object) -> object:
    # ``{imap: {...}}`` in the file; the model keeps the inner mapping (errors point at imap.<key>).
    return value["imap"] if isinstance(value, dict) and set(value) == {"imap"} else value


# ``confirm_delivery: NAME`` (an installed plugin, e.g. ``lab``) or ``{imap: {url, username, password}}``.
DeliveryConfirm = Annotated[
    Annotated[str, Tag("plugin")]
    | Annotated[ImapConfirm, BeforeValidator(_unwrap_imap), Tag("imap")],
    Discriminator(_confirmer_kind),
]


_ENDPOINT = re.compile(
    r"^(?:(?P<user>[^@\s]+)@)?(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^\s:@\[\]]+))(?::(?P<port>\d+))?$"
)


def parse_endpoint(text: str, default_port: int) -> tuple[str | None, str, int]:
    """``[user@]host[:port]`` (``[v6]:port`` for IPv6) as (user, host, port); ``ValueError`` if not."""
    match = _ENDPOINT.match(text.strip())
    if match is None:
        raise ValueError(text)
    port = int(match.group("port") or default_port)
    if not 1 <= port <= 65535:
        raise ValueError(text)
    return match.group("user"), match.group("v6") or match.group("host"), port


class ProbeVia(_Strict):
    """Where the probe's TCP connection starts (probe/vantage.py): an SSH host or a SOCKS5 proxy.

    ``{ssh: user@host[:port], key, known_hosts[, passphrase]}``: the SSH host opens the
    connection (direct-tcpip port forwarding); its host key must be in ``known_hosts``.
    ``{socks5: host[:port]}``: a SOCKS5 proxy without authentication opens it. Either way
    the mail server's name is resolved at the vantage, as an outside sender would.
    """

    ssh: str | None = None
    key: Path | None = None
    known_hosts: Path | None = None
    passphrase: SecretStr | None = None
    socks5: str | None = None

    @model_validator(mode="after")
    def _one_vantage(self) -> ProbeVia:
        if (self.ssh is None) == (self.socks5 is None):
            raise _rule("give exactly one of ssh: user@host:port or socks5: host:port")
        if self.ssh is not None:
            try:
                user, _, _ = parse_endpoint(self.ssh, 22)
            except ValueError:
                raise _rule("expected user@host or user@host:port", "ssh") from None
            if user is None:
                raise _rule("name the SSH user: user@host:port", "ssh")
            for needed in ("key", "known_hosts"):
                if getattr(self, needed) is None:
                    raise _rule(f"an ssh vantage needs {needed}: PATH (relative to the site file)", needed)
            return self
        assert self.socks5 is not None
        try:
            user, _, _ = parse_endpoint(self.socks5, 1080)
        except ValueError:
            raise _rule("expected host:port", "socks5") from None
        if user is not None:
            raise _rule("SOCKS5 authentication is not supported; give host:port", "socks5")
        extra = [k for k in ("key", "known_hosts", "passphrase") if getattr(self, k) is not None]
        if extra:
            raise _rule(f"{extra[0]} belongs to an ssh vantage, not to socks5", extra[0])
        return self

    @property
    def label(self) -> str:
        """How reports name the vantage: ``ssh probe@host:22`` or ``socks5 host:1080``."""
        if self.ssh is not None:
            user, host, port = parse_endpoint(self.ssh, 22)
            return f"ssh {user}@{_host_port(host, port)}"
        _, host, port = parse_endpoint(self.socks5 or "", 1080)
        return f"socks5 {_host_port(host, port)}"


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class ProbeSpec(_Strict):
    """How to reach the mail server through the FortiGate and what a passing probe is."""

    host: OneLine = Field(min_length=1)
    port: int = Field(25, ge=1, le=65535)
    mode: ProbeMode = "starttls"
    server_name: OneLine | None = None
    timeout: Seconds = Field(10.0, gt=0, le=300)
    retries: int = Field(3, ge=1, le=10)
    retry_delay: Seconds = Field(2.0, ge=0, le=300)
    # None: the vantage's or this machine's FQDN (probe/sender.py), a name HELO DNS lookups resolve.
    ehlo: OneLine | None = None
    transaction: ProbeTransaction | None = None
    via: ProbeVia | None = None  # None: connect from this machine
    # Also verify the served chain (PKIX, as strict senders do): true = system trust store, or a CA bundle.
    verify_chain: bool | Path = False
    username: OneLine | None = None
    password: SecretStr | None = None
    # Who confirms the message reached the mailbox (probe/delivery.py): a plugin's name, or an IMAP mailbox.
    confirm_delivery: DeliveryConfirm | None = None

    @field_validator("confirm_delivery", mode="before")
    @classmethod
    def _confirmer_shape(cls, value: object) -> object:
        if value is None or isinstance(value, ImapConfirm):
            return value
        if isinstance(value, str):
            return _installed_confirmer(value)
        if not isinstance(value, dict) or set(value) != {"imap"}:
            names = " or ".join(_confirmer_names()) or "a confirmer name"
            raise _rule(f"expected {names} or {{imap: {{url, username, password, mailbox, timeout}}}}")
        return value

    @field_serializer("confirm_delivery", mode="wrap")
    def _confirmer_dump(self, value: object, handler: SerializerFunctionWrapHandler) -> object:
        # Dumped in the file's own shape, so a dump validates again.
        dumped = handler(value)
        return {"imap": dumped} if isinstance(value, ImapConfirm) else dumped

    @field_validator("verify_chain", mode="before")
    @classmethod
    def _chain_shape(cls, value: object) -> bool | Path:
        if isinstance(value, bool):
            return value
        if isinstance(value, str | Path) and str(value):
            return Path(value)
        raise _rule("expected true (the system trust store), false or the path of a CA bundle")

    @model_validator(mode="after")
    def _login_pair(self) -> ProbeSpec:
        if (self.username is None) != (self.password is None):
            missing = "password" if self.password is None else "username"
            raise _rule("SMTP AUTH needs both username and password", missing)
        if self.verify_chain is not False and self.server_name is None:
            raise _rule(
                "verify_chain needs server_name: the name senders check the chain against", "server_name"
            )
        return self


class CertificateSpec(_Strict):
    """Where the mail server's certificate and key are; the loaded material sits beside it."""

    LOADER_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"cert_pem", "key_pem", "fingerprint_sha256", "not_after", "sans"}
    )

    cert: Path
    key: Path
    passphrase: SecretStr | None = None
    # Filled by the loader after the files are checked (never from YAML):
    cert_pem: str = ""
    key_pem: SecretStr = SecretStr("")
    fingerprint_sha256: str = ""  # lowercase hex, of the leaf certificate's DER
    not_after: datetime | None = None
    sans: tuple[str, ...] = ()


class PolicyRef(_Strict):
    """Exactly one of ``id``, ``name`` or ``vip`` (the policy whose dstaddr holds that VIP)."""

    id: int | None = Field(None, ge=0)
    name: PolicyName | None = None
    vip: VipName | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> PolicyRef:
        given = [k for k in ("id", "name", "vip") if getattr(self, k) is not None]
        if len(given) != 1:
            detail = "none is" if not given else f"{' and '.join(given)} are"
            raise _rule(f"give exactly one of id, name or vip ({detail} given)")
        return self


class MailServer(_Strict):
    """One inbound mail server behind a device: its policy, certificate, profiles and probe."""

    name: Label
    policy: PolicyRef
    certificate: CertificateSpec
    emailfilter_profile: EmailfilterProfileName
    ssl_profile: SslProfileName
    protocol_options: ProtocolOptionsName
    probe: ProbeSpec
    fallback: tuple[FallbackRung, ...] = ()
    vdom: VdomName | None = None  # overrides the device's vdom for this mail server


_URL_REFUSED = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")
_HOSTNAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")


def _host_problem(host: str) -> str | None:
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return "the URL's host is not a valid IPv6 address"
        return None
    if not _HOSTNAME.match(host) or ".." in host:
        return "the URL's host must be a DNS name or an IP address"
    return None


def _url_problem(url: str) -> str | None:
    # Messages never echo the URL: it may carry credentials.
    if _URL_REFUSED.search(url):
        return "the URL contains a space, line break or control character"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        # urlsplit rejects a port that is not a number in 0-65535.
        return "the URL's port must be a number between 1 and 65535"
    if parts.scheme not in ("http", "https"):
        return "the URL must start with https:// (or http:// with allow_insecure_http: true)"
    if not parts.hostname:
        return "the URL has no host"
    if parts.username is not None or parts.password is not None:
        return "credentials do not belong in the URL; use token, or username and password"
    if port == 0:
        return "the URL's port must be a number between 1 and 65535"
    if parts.path not in ("", "/") or "?" in url or "#" in url:
        return "give only scheme, host and port, like https://192.0.2.1:8443 (no path, query or fragment)"
    return _host_problem(parts.hostname)


WorkspaceMode = Literal["auto", "lock", "off"]


class FortiManagerSpec(_Strict):
    """The FortiManager that manages some of the site's devices (the top-level ``fortimanager:``)."""

    url: str
    adom: Label = "root"
    token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    verify_tls: bool | Path = True
    timeout: Seconds = Field(30.0, gt=0, le=600)
    # auto: lock the ADOM workspace when FortiManager runs in workspace mode; lock: always; off: never.
    workspace: WorkspaceMode = "auto"
    # Seconds to wait for another admin's workspace lock to go; 0 refuses at once (exit 5).
    lock_wait: Seconds = Field(0.0, ge=0, le=3600)
    install_timeout: Seconds = Field(600.0, gt=0, le=7200)
    allow_insecure_http: bool = False

    @field_validator("url")
    @classmethod
    def _url_shape(cls, url: str) -> str:
        problem = _url_problem(url)
        if problem:
            raise _rule(problem)
        return url

    @field_validator("verify_tls", mode="before")
    @classmethod
    def _verify_shape(cls, value: object) -> bool | Path:
        if isinstance(value, bool | Path):
            return value
        if isinstance(value, str) and value:
            return Path(value)
        raise _rule("expected true, false or the path of a CA bundle")

    @field_validator("token")
    @classmethod
    def _token_usable(cls, token: SecretStr | None) -> SecretStr | None:
        problem = None if token is None else token_problem(token.get_secret_value())
        if problem:
            raise _rule(problem)
        return token

    @model_validator(mode="after")
    def _auth(self) -> FortiManagerSpec:
        token = self.token is not None
        login = self.username is not None or self.password is not None
        if token and login:
            raise _rule("give either token (an API key) or username and password, not both", "token")
        if not token and not login:
            raise _rule("no credentials: give token (an API key), or username and password", "token")
        if login and (self.username is None or self.password is None):
            raise _rule(
                "username and password go together", "password" if self.password is None else "username"
            )
        if urlsplit(self.url).scheme == "http" and not self.allow_insecure_http:
            raise _rule("http:// would send the credentials in clear text; use https://", "url")
        return self


class DeviceFortiManager(_Strict):
    """How one device is reached through FortiManager (``devices[].fortimanager``)."""

    device: Label | None = None  # its name in FortiManager's device manager (default: the device's name)
    package: Label  # the policy package that holds its inbound mail policy
    vdom: VdomName | None = None  # default: the device's vdom


class Device(_Strict):
    """One FortiGate, with the site's ``defaults`` already merged in."""

    name: Label
    url: str
    vdom: VdomName = "root"
    # true, false, a CA bundle (Path) or a pin "sha256:<64 hex>" of the device's own certificate.
    verify_tls: bool | Path | str = True
    timeout: Seconds = Field(10.0, gt=0, le=300)
    token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    allow_insecure_http: bool = False
    allow_fortimanager_managed: bool = False
    # Reached through the site's FortiManager (its device REST API is then read only).
    fortimanager: DeviceFortiManager | None = None
    mail_servers: tuple[MailServer, ...] = ()

    @field_validator("url")
    @classmethod
    def _url_shape(cls, url: str) -> str:
        problem = _url_problem(url)
        if problem:
            raise _rule(problem)
        return url

    @field_validator("verify_tls", mode="before")
    @classmethod
    def _verify_shape(cls, value: object) -> bool | Path | str:
        # One clear error instead of pydantic's three (one per member of the union).
        if isinstance(value, bool | Path):
            return value
        if isinstance(value, str) and value:
            pin = pin_sha256(value)
            return Path(value) if pin is None else f"sha256:{pin}"
        raise _rule('expected true, false, the path of a CA bundle or "sha256:<fingerprint>"')

    @field_validator("token")
    @classmethod
    def _token_usable(cls, token: SecretStr | None) -> SecretStr | None:
        problem = None if token is None else token_problem(token.get_secret_value())
        if problem:
            raise _rule(problem)
        return token

    @field_validator("password")
    @classmethod
    def _password_usable(cls, password: SecretStr | None) -> SecretStr | None:
        problem = None if password is None else password_problem(password.get_secret_value())
        if problem:
            raise _rule(problem)
        return password

    @field_validator("username")
    @classmethod
    def _username_usable(cls, username: str | None) -> str | None:
        problem = None if username is None else username_problem(username)
        if problem:
            raise _rule(problem)
        return username

    @property
    def tls_pin_sha256(self) -> str | None:
        """The device certificate's pinned SHA-256 (64 lowercase hex digits), when ``verify_tls`` pins.

        The client then skips CA and hostname checks and accepts exactly the certificate whose
        DER hashes to this value (the FortiGate's own self-signed certificate, the common case).
        """
        return self.verify_tls.removeprefix("sha256:") if isinstance(self.verify_tls, str) else None

    @model_validator(mode="after")
    def _auth(self) -> Device:
        token = self.token is not None
        login = self.username is not None or self.password is not None
        if token and login:
            raise _rule("give either token or username and password, not both", "token")
        if not token and not login:
            raise _rule("no credentials: give token, or username and password", "token")
        if login and (self.username is None or self.password is None):
            raise _rule(
                "username and password go together", "password" if self.password is None else "username"
            )
        if urlsplit(self.url).scheme == "http" and not self.allow_insecure_http:
            raise _rule(
                "http:// would send the credentials in clear text; use https:// "
                "or set allow_insecure_http: true",
                "url",
            )
        return self


def _aware(value: datetime, info_field: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise _rule(f"{info_field} has no time zone; write it like 2026-11-24T22:00:00+01:00")
    return value


class ChangeWindow(_Strict):
    """When writes are allowed; both ends carry a time zone."""

    start: datetime
    end: datetime

    @field_validator("start", "end", mode="before")
    @classmethod
    def _no_bare_dates(cls, value: object) -> object:
        # A bare date would silently mean midnight in no time zone.
        if isinstance(value, date) and not isinstance(value, datetime):
            raise _rule("a date alone is not enough; write it like 2026-11-24T22:00:00+01:00")
        return value

    @field_validator("start")
    @classmethod
    def _start_aware(cls, value: datetime) -> datetime:
        return _aware(value, "start")

    @field_validator("end")
    @classmethod
    def _end_aware(cls, value: datetime) -> datetime:
        return _aware(value, "end")

    @model_validator(mode="after")
    def _ordered(self) -> ChangeWindow:
        if self.end <= self.start:
            raise _rule("the change window must end after it starts", "end")
        return self


_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)\s*%$")


class Rollout(_Strict):
    """How a fleet run proceeds: canary devices, batches, concurrency, halt rule."""

    canary: int = Field(1, ge=0)
    batch_size: int = Field(10, ge=1)
    concurrency: int = Field(10, ge=1)
    max_failures: int | str = 1  # a count, or a percentage such as "10%"

    @field_validator("max_failures", mode="before")
    @classmethod
    def _count_or_percent(cls, value: object) -> int | str:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        if isinstance(value, str):
            match = _PERCENT.match(value.strip())
            if match and float(match.group(1)) <= 100:
                return f"{match.group(1)}%"
        raise _rule('expected a count such as 1 or a percentage such as "10%"')


class Site(_Strict):
    """A validated site file; build it with ``load_site``, not by hand."""

    LOADER_FIELDS: ClassVar[frozenset[str]] = frozenset({"path", "warnings"})

    version: Literal[1]
    devices: tuple[Device, ...]
    change_window: ChangeWindow | None = None
    rollout: Rollout = Rollout()
    templates: Path | None = None
    fortimanager: FortiManagerSpec | None = None
    # Filled by the loader:
    path: Path = Path("site.yml")
    warnings: tuple[str, ...] = ()

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def device(self, name: str) -> Device:
        for device in self.devices:
            if device.name == name:
                return device
        raise KeyError(name)

    @model_validator(mode="after")
    def _fortimanager_given(self) -> Site:
        routed = [d.name for d in self.devices if d.fortimanager is not None]
        if routed and self.fortimanager is None:
            raise _rule(
                f"device {routed[0]!r} is reached through FortiManager (its fortimanager: block) "
                "but the site has no top-level fortimanager: block",
                "fortimanager",
            )
        return self
