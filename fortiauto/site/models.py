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
    SmtpWord,
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
    "PreviousBindings",
    "ProbeSpec",
    "ProbeTransaction",
    "ProbeVia",
    "Rollout",
    "Site",
]

SUPPORTED_VERSIONS = (1,)

ProbeMode = Literal["plain", "starttls", "smtps", "opportunistic"]
FallbackRung = Literal["certificate-inspection"]
# Anti-spam checks of an email filter profile (FortiOS ``emailfilter profile`` ``options``;
# ``spambal``/``spambwl`` and the banned-word check need tables fortiauto does not fill).
SpamCheck = Literal[
    "spamfsip", "spamfsurl", "spamfschksum", "spamfsphish", "spamfssubmit",
    "spamhelodns", "spamraddrdns", "spamrbl", "spamhdrcheck",
]  # fmt: skip
DEFAULT_SPAM_CHECKS: tuple[SpamCheck, ...] = ("spamfsip", "spamfsurl", "spamfschksum")

_rule = rule  # site/rules.py: a SITE_RULE error, optionally pointing at a key inside the model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProbeTransaction(_Strict):
    """A test message the probe sends through the VIP (MAIL FROM / RCPT TO).

    Without ``mail_from`` the probe derives one in the recipient's domain (probe/sender.py),
    a domain that has an MX record, so FortiOS's return-email DNS check passes.
    """

    mail_from: SmtpWord | None = Field(
        None,
        description="Envelope sender (MAIL FROM). Default: an address in the recipient's domain.",
        examples=["probe@example.test"],
    )
    rcpt_to: SmtpWord = Field(
        description="Envelope recipient (RCPT TO); every run sends one probe message to it.",
        examples=["postmaster@example.test"],
    )


_IMAP_PORTS = {"imap": 143, "imaps": 993}


class ImapConfirm(_Strict):
    """The mailbox where a delivered probe message lands, read over IMAP (probe/imap.py).

    ``imap://`` upgrades with STARTTLS (never falls back to clear text), ``imaps://`` is
    implicit TLS; ``verify_tls`` is on by default and may name a CA bundle instead.
    """

    url: str = Field(
        description="imaps://HOST[:PORT] (implicit TLS) or imap://HOST[:PORT] (STARTTLS, never clear text).",
        examples=["imaps://mail.example.test:993"],
    )
    username: str = Field(min_length=1, description="IMAP login name.", examples=["probe-reader"])
    password: SecretStr = Field(description="IMAP password (a secret).", examples=["${env:IMAP_PASSWORD}"])
    mailbox: str = Field("INBOX", min_length=1, description="The folder the probe message lands in.")
    timeout: Seconds = Field(
        60.0, gt=0, le=3600, description="Seconds to wait for the probe message to arrive."
    )
    verify_tls: bool | Path = Field(
        True, description="Verify the IMAP server's certificate: true, false, or the path of a CA bundle."
    )

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
    Annotated[str, Tag("plugin")] | Annotated[ImapConfirm, BeforeValidator(_unwrap_imap), Tag("imap")],
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

    ssh: str | None = Field(
        None,
        description="user@host[:port] of an SSH host that opens the probe's connection.",
        examples=["probe@vantage.example.test:22"],
    )
    key: Path | None = Field(
        None, description="SSH private key file (relative to the site file).", examples=["keys/probe_ed25519"]
    )
    known_hosts: Path | None = Field(
        None, description="known_hosts file that holds the SSH host's key.", examples=["keys/known_hosts"]
    )
    passphrase: SecretStr | None = Field(None, description="Passphrase of the SSH key (a secret).")
    socks5: str | None = Field(
        None,
        description="host[:port] of a SOCKS5 proxy (no authentication) that opens the connection.",
        examples=["socks.example.test:1080"],
    )

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

    host: SmtpWord = Field(
        min_length=1,
        description="Address the probe connects to: the VIP's external address, as senders reach it.",
        examples=["203.0.113.25"],
    )
    port: int = Field(25, ge=1, le=65535, description="TCP port of the VIP (25 for SMTP, 465 for SMTPS).")
    mode: ProbeMode = Field(
        "starttls",
        description=(
            "plain: no TLS; starttls: STARTTLS required; smtps: TLS from the first byte; "
            "opportunistic: STARTTLS when offered, else plain."
        ),
    )
    server_name: SmtpWord | None = Field(
        None,
        description="TLS server name (SNI), checked against the certificate's SANs.",
        examples=["mx1.example.test"],
    )
    timeout: Seconds = Field(
        10.0,
        gt=0,
        le=300,
        description="Seconds each step of a probe attempt may take (connect, EHLO, TLS, DATA).",
    )
    retries: int = Field(
        3, ge=1, le=10, description="Attempts, each on a fresh connection, before the probe fails."
    )
    retry_delay: Seconds = Field(2.0, ge=0, le=300, description="Seconds between attempts.")
    ehlo: SmtpWord | None = Field(
        None,
        description="EHLO name. Default: the vantage's or this machine's FQDN (HELO DNS checks resolve it).",
        examples=["probe.example.test"],
    )
    transaction: ProbeTransaction | None = Field(
        None, description="Send a test message (MAIL FROM, RCPT TO, DATA) instead of stopping after TLS."
    )
    via: ProbeVia | None = Field(
        None,
        description="Where the probe connects from (an SSH host or SOCKS5 proxy). Default: this machine.",
    )
    verify_chain: bool | Path = Field(
        False,
        description=(
            "Also verify the served certificate chain as strict senders do: true (system trust store), "
            "false, or the path of a CA bundle. Needs server_name. A renewal signed by another issuer "
            "is verified anyway (against this bundle, else the system trust store) unless this is "
            "set to false explicitly (docs/rotation.md)."
        ),
    )
    username: OneLine | None = Field(None, description="SMTP AUTH user (with password).")
    password: SecretStr | None = Field(None, description="SMTP AUTH password (a secret).")
    confirm_delivery: DeliveryConfirm | None = Field(
        None,
        description=(
            "Who confirms the probe message reached the mailbox: an installed confirmer's name "
            "(the mock lab's is lab) or {imap: {url, username, password, mailbox, timeout, verify_tls}}."
        ),
    )

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

    cert: Path = Field(
        description="PEM file: the mail server's certificate, then its chain (relative to the site file).",
        examples=["certs/mx1.pem"],
    )
    key: Path = Field(
        description="PEM private key of that certificate (relative to the site file).",
        examples=["certs/mx1.key"],
    )
    passphrase: SecretStr | None = Field(
        None, description="Passphrase of an encrypted key (a secret).", examples=["${env:MX_KEY_PASSPHRASE}"]
    )
    # Filled by the loader after the files are checked (never from YAML):
    cert_pem: str = ""
    key_pem: SecretStr = SecretStr("")
    fingerprint_sha256: str = ""  # lowercase hex, of the leaf certificate's DER
    not_after: datetime | None = None
    sans: tuple[str, ...] = ()


class PolicyRef(_Strict):
    """Exactly one of ``id``, ``name`` or ``vip`` (the policy whose dstaddr holds that VIP)."""

    id: int | None = Field(None, ge=0, description="The firewall policy's id (policyid).", examples=[12])
    name: PolicyName | None = Field(
        None, description="The firewall policy's name.", examples=["inbound-smtp"]
    )
    vip: VipName | None = Field(
        None, description="The VIP that the inbound policy's destination holds.", examples=["vip-mx1"]
    )
    profile_group: Literal["refuse", "edit"] = Field(
        "refuse",
        description=(
            "When the policy applies a profile group (profile-type group), whose profiles act instead of "
            "the policy's own: refuse (the default) names the group and writes nothing; edit sets the "
            "group's email filter, SSL/SSH and protocol options profiles to fortiauto's (its other "
            "profiles stay), which changes every policy using the group too (the plan names them)."
        ),
        examples=["edit"],
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> PolicyRef:
        given = [k for k in ("id", "name", "vip") if getattr(self, k) is not None]
        if len(given) != 1:
            detail = "none is" if not given else f"{' and '.join(given)} are"
            raise _rule(f"give exactly one of id, name or vip ({detail} given)")
        return self


class PreviousBindings(_Strict):
    """What the policy was bound to before fortiauto: ``fortiauto remove`` restores exactly this."""

    ssl_profile: SslProfileName = Field(
        description="The policy's SSL/SSH inspection profile before fortiauto.",
        examples=["certificate-inspection"],
    )
    emailfilter_profile: EmailfilterProfileName | Literal[""] = Field(
        description='The policy\'s email filter profile before fortiauto ("" for none).',
        examples=["default"],
    )
    protocol_options: ProtocolOptionsName = Field(
        description="The policy's protocol options profile before fortiauto.", examples=["default"]
    )
    inspection_mode: Literal["flow", "proxy"] = Field(
        description="The policy's inspection mode before fortiauto.", examples=["flow"]
    )


class MailServer(_Strict):
    """One inbound mail server behind a device: its policy, certificate, profiles and probe."""

    name: Label = Field(
        description="Names the mail server in reports and its certificate on the unit (fa-NAME-...).",
        examples=["mx1"],
    )
    policy: PolicyRef = Field(
        description="The inbound policy to the mail server: exactly one of id, name or vip.",
        examples=[{"vip": "vip-mx1"}],
    )
    certificate: CertificateSpec = Field(
        description="The mail server's certificate and key, imported to the unit."
    )
    emailfilter_profile: EmailfilterProfileName = Field(
        description="Email filter profile fortiauto creates or updates (logs all inbound mail).",
        examples=["mail-inbound"],
    )
    ssl_profile: SslProfileName = Field(
        description='SSL/SSH inspection profile fortiauto creates or updates ("Protecting SSL Server").',
        examples=["protect-mx1"],
    )
    protocol_options: ProtocolOptionsName = Field(
        description="Protocol options profile fortiauto creates or updates (SMTP inspection).",
        examples=["smtp-inbound"],
    )
    probe: ProbeSpec = Field(description="How to test mail through the VIP before and after the change.")
    fallback: tuple[FallbackRung, ...] = Field(
        (),
        description=(
            "Lesser fixes tried in order when the full fix breaks mail: certificate-inspection keeps "
            "logging without deep inspection."
        ),
        examples=[["certificate-inspection"]],
    )
    vdom: VdomName | None = Field(None, description="This mail server's VDOM, when not the device's.")
    spam_checks: tuple[SpamCheck, ...] = Field(
        DEFAULT_SPAM_CHECKS,
        description=(
            "Anti-spam checks an email filter profile fortiauto creates performs (FortiGuard IP, URL and "
            "checksum by default; actions stay tag-only). An existing profile is never changed here."
        ),
        examples=[["spamfsip", "spamfsurl", "spamfschksum"]],
    )
    allow_any_policy: bool = Field(
        False,
        description=(
            "Change the named policy even when it does not look like the inbound mail policy (an accept "
            "policy to a VIP whose service covers the probe's port); checked before any write otherwise."
        ),
    )
    previous: PreviousBindings | None = Field(
        None,
        description=(
            "The policy's bindings before fortiauto (with policy.profile_group: edit, its profile group's), "
            "for `fortiauto remove` (which refuses a mail server without them: it cannot know what to "
            "restore)."
        ),
        examples=[
            {
                "ssl_profile": "certificate-inspection",
                "emailfilter_profile": "default",
                "protocol_options": "default",
                "inspection_mode": "flow",
            }
        ],
    )


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


def _url_problem(url: str) -> str | None:  # noqa: PLR0911 - one message per way a URL is wrong, checked in order
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

    url: str = Field(
        description="https://HOST[:PORT] of the FortiManager.", examples=["https://fmg.example.test"]
    )
    adom: Label = Field("root", description="The ADOM that holds the devices.")
    token: SecretStr | None = Field(
        None, description="FortiManager API key (a secret).", examples=["${env:FMG_API_KEY}"]
    )
    username: str | None = Field(None, description="Admin login (with password), instead of an API key.")
    password: SecretStr | None = Field(None, description="Admin password (a secret).")
    verify_tls: bool | Path = Field(
        True, description="Verify FortiManager's certificate: true, false, or the path of a CA bundle."
    )
    timeout: Seconds = Field(30.0, gt=0, le=600, description="Seconds to wait for each API answer.")
    workspace: WorkspaceMode = Field(
        "auto",
        description="auto: lock the ADOM when FortiManager runs in workspace mode; lock: always; off: never.",
    )
    lock_wait: Seconds = Field(
        0.0,
        ge=0,
        le=3600,
        description="Seconds to wait for another admin's lock; 0 refuses at once (exit 5).",
    )
    install_timeout: Seconds = Field(
        600.0, gt=0, le=7200, description="Seconds an install to the devices may take."
    )
    allow_insecure_http: bool = Field(False, description="Allow http:// (credentials in clear text).")

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
        _check_credentials(self, key_name="token (an API key)", http_hint="use https://")
        return self


class DeviceFortiManager(_Strict):
    """How one device is reached through FortiManager (``devices[].fortimanager``)."""

    device: Label | None = Field(
        None, description="Its name in FortiManager's device manager. Default: the device's name."
    )
    package: Label = Field(
        description="The policy package that holds its inbound mail policy.", examples=["branch-pkg"]
    )
    vdom: VdomName | None = Field(None, description="Its VDOM in FortiManager. Default: the device's vdom.")


class Device(_Strict):
    """One FortiGate, with the site's ``defaults`` already merged in."""

    LOADER_FIELDS: ClassVar[frozenset[str]] = frozenset({"credential_ref"})

    name: Label = Field(
        description="Names the device in output, reports, journals and --limit.", examples=["fgt-edge-1"]
    )
    url: str = Field(
        description="https://HOST[:PORT] of the FortiGate's REST API (no path).",
        examples=["https://192.0.2.1:8443"],
    )
    vdom: VdomName = Field("root", description="The VDOM the mail policy lives in.")
    verify_tls: bool | Path | str = Field(
        True,
        description=(
            "Verify the FortiGate's certificate: true (system CAs), false (warned), the path of a CA bundle, "
            'or "sha256:<fingerprint>" to pin the unit\'s own (self-signed) certificate.'
        ),
        examples=["certs/ca.pem", "sha256:3f:a1:...:9c (64 hex digits)"],
    )
    timeout: Seconds = Field(10.0, gt=0, le=300, description="Seconds to wait for each API answer.")
    token: SecretStr | None = Field(
        None,
        description="REST API token (a secret); or give username and password.",
        examples=["${env:FGT_TOKEN}"],
    )
    username: str | None = Field(
        None, description="Admin login for a session (with password).", examples=["admin"]
    )
    password: SecretStr | None = Field(
        None, description="Admin password (a secret).", examples=["${file:secrets/fgt.password}"]
    )
    allow_insecure_http: bool = Field(False, description="Allow an http:// URL (credentials in clear text).")
    allow_fortimanager_managed: bool = Field(
        False,
        description=(
            "Change a unit that FortiManager manages directly (its next install may undo the change); "
            "refused by default."
        ),
    )
    allow_newer_fortios: bool = Field(
        False,
        description=(
            "On a FortiOS family newer than the supported ones, try the newest known desired state "
            "(verified by reading it back) instead of refusing."
        ),
    )
    fortimanager: DeviceFortiManager | None = Field(
        None,
        description="Reach this device through the site's FortiManager (its REST API is then read only).",
    )
    mail_servers: tuple[MailServer, ...] = Field(
        (), description="The inbound mail servers behind this device."
    )
    # Filled by the loader (never from YAML): where the token or password came from, as the
    # ``${env:NAME}`` / ``${file:/abs/path}`` reference, so the journal can name it without the secret.
    credential_ref: str | None = None

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
        _check_credentials(self, key_name="token", http_hint="use https:// or set allow_insecure_http: true")
        return self


def _check_credentials(spec: Device | FortiManagerSpec, *, key_name: str, http_hint: str) -> None:
    """A token, or a username with its password, never both; and no credential over plain http."""
    token = spec.token is not None
    login = spec.username is not None or spec.password is not None
    if token and login:
        raise _rule(f"give either {key_name} or username and password, not both", "token")
    if not token and not login:
        raise _rule(f"no credentials: give {key_name}, or username and password", "token")
    if login and (spec.username is None or spec.password is None):
        raise _rule("username and password go together", "password" if spec.password is None else "username")
    if urlsplit(spec.url).scheme == "http" and not spec.allow_insecure_http:
        raise _rule(f"http:// would send the credentials in clear text; {http_hint}", "url")


def _aware(value: datetime, info_field: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise _rule(f"{info_field} has no time zone; write it like 2026-11-24T22:00:00+01:00")
    return value


class ChangeWindow(_Strict):
    """When writes are allowed; both ends carry a time zone."""

    start: datetime = Field(
        description="When writes may start, with its time zone.", examples=["2026-11-24T22:00:00+01:00"]
    )
    end: datetime = Field(
        description="When the last device must have finished, with its time zone.",
        examples=["2026-11-25T02:00:00+01:00"],
    )

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

    canary: int = Field(1, ge=0, description="Devices changed first, alone; the run halts if one fails.")
    batch_size: int = Field(10, ge=1, description="Devices per batch after the canary.")
    concurrency: int = Field(10, ge=1, description="Devices in flight at once within a batch.")
    max_failures: int | str = Field(
        1,
        description='Failed devices (a count, or a percentage like "10%") after which no new device starts.',
        examples=[1, "10%"],
    )

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

    version: Literal[1] = Field(description="The site file format; this fortiauto reads 1.", examples=[1])
    devices: tuple[Device, ...] = Field(description="The FortiGates to change, each listed once.")
    change_window: ChangeWindow | None = Field(
        None, description="When writes are allowed (apply refuses outside it; --wait waits)."
    )
    rollout: Rollout = Field(
        Rollout(), description="Canary, batches, concurrency and halt rule of a fleet run."
    )
    templates: Path | None = Field(
        None,
        description=(
            "Folder with the site's own desired state (desired/recommended.yaml.j2 or "
            "desired/<family>.yaml.j2) "
            "instead of fortiauto's recommendation (relative to the site file)."
        ),
    )
    fortimanager: FortiManagerSpec | None = Field(
        None, description="The FortiManager that manages devices with a fortimanager: block."
    )
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
