"""FortiOS version facts: parse ``vX.Y.Z`` and answer the feature questions templates and tasks ask.

Every field-name switch fortiauto honours lives here, so a new FortiOS quirk is one
property, not a branch scattered over the tasks (see docs/reference/fortios-objects.md,
"Gotchas" 1). No I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from fortiauto.errors import UnsupportedVersion

__all__ = ["SUPPORTED_FAMILIES", "FortiOSVersion", "small_ram_model"]

SUPPORTED_FAMILIES = ("6.4", "7.0", "7.2", "7.4", "7.6")
NEWEST_FAMILY = SUPPORTED_FAMILIES[-1]

_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?$")
# 2 GB RAM models (KB 389751 and the 7.6.5 admin guide page above): the FortiGate / FortiWiFi
# 40F, 60E, 60F, 61E, 61F, 80E, 81E, 90E and 91E series with their variants (-3G4G, -POE,
# -DSL ...), and FortiGate-Rugged 60F. ``system/status`` names them FGT60F, FWF61F, FGR60F.
_SMALL_RAM_NUMBERS = ("40F", "60E", "60F", "61E", "61F", "80E", "81E", "90E", "91E")
_MODEL_PREFIXES = ("FORTIGATERUGGED", "FORTIGATE", "FORTIWIFI", "FGT", "FWF", "FGR", "FG", "FW")


def small_ram_model(model: str) -> bool:
    """Is ``model`` (``FGT60F``, ``FortiGate-60F``, ``FWF-61F``, ``FGR60F``) a 2 GB RAM FortiGate?"""
    code = re.sub(r"[^A-Z0-9]", "", model.upper())
    rugged = code.startswith(("FGR", "FORTIGATERUGGED"))
    for prefix in _MODEL_PREFIXES:
        if code.startswith(prefix):
            code = code[len(prefix) :]
            break
    else:
        return False
    if rugged:
        return code.startswith("60F")
    return code.startswith(_SMALL_RAM_NUMBERS)


@dataclass(frozen=True, order=True)
class FortiOSVersion:
    """A FortiOS release such as 7.0.12, comparable and hashable."""

    major: int
    minor: int
    patch: int = 0
    model: str = ""  # the unit's model when known (``on_model``): some facts depend on its RAM class

    @classmethod
    def parse(cls, text: str) -> FortiOSVersion:
        """Parse ``v7.0.12``, ``7.0.12`` or ``7.0`` (patch 0)."""
        match = _VERSION_RE.match(text.strip())
        if not match:
            raise UnsupportedVersion(f"not a FortiOS version: {text!r}")
        major, minor, patch = match.groups()
        return cls(int(major), int(minor), int(patch or 0))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def tag(self) -> str:
        """The form FortiOS puts in every envelope: ``v7.0.12``."""
        return f"v{self}"

    @property
    def family(self) -> str:
        """``major.minor``, the unit templates are kept per (``7.0``)."""
        return f"{self.major}.{self.minor}"

    def on_model(self, model: str) -> FortiOSVersion:
        """This release as run by ``model`` (the facts below then answer for its RAM class)."""
        return replace(self, model=model.strip())

    @property
    def newer_than_supported(self) -> bool:
        """A family after the newest one fortiauto knows (e.g. 8.0 while 7.6 is the newest)."""
        newest = tuple(int(part) for part in NEWEST_FAMILY.split("."))
        return (self.major, self.minor) > newest

    def require_supported(self, *, allow_newer: bool = False) -> FortiOSVersion:
        """Return self, or raise ``UnsupportedVersion`` naming the supported families.

        ``allow_newer`` (the site's ``allow_newer_fortios``) lets a newer family through: its
        facts answer as for the newest known family, and the read-back verifies every write.
        """
        if self.family in SUPPORTED_FAMILIES or (allow_newer and self.newer_than_supported):
            return self
        hint = (
            "; set allow_newer_fortios: true for this device to try the newest known desired state "
            f"({NEWEST_FAMILY}), verified by reading it back"
            if self.newer_than_supported
            else ""
        )
        raise UnsupportedVersion(
            f"FortiOS {self} is not supported; supported: {', '.join(SUPPORTED_FAMILIES)}{hint}"
        )

    def support_notes(self) -> tuple[str, ...]:
        """What the plan says about a release run under ``allow_newer_fortios``."""
        if not self.newer_than_supported:
            return ()
        return (
            f"FortiOS {self} is newer than the supported families ({', '.join(SUPPORTED_FAMILIES)}): "
            f"the FortiOS {NEWEST_FAMILY} desired state is tried (allow_newer_fortios) and every "
            "write is verified by reading it back",
        )

    def at_least(self, major: int, minor: int, patch: int = 0) -> bool:
        return (self.major, self.minor, self.patch) >= (major, minor, patch)

    # --- feature switches (sources: fortios-objects.md) ---------------------------------

    @property
    def emailfilter_log_field(self) -> str:
        """Per-protocol logging switch: ``log`` on 6.2.x and 6.4.1, ``log-all`` on 6.4.0 and 6.4.2+."""
        if self.family == "6.2" or (self.family == "6.4" and self.patch == 1):
            return "log"
        return "log-all"

    @property
    def has_feature_set(self) -> bool:
        """``feature-set`` (flow/proxy) on the email filter profile: from 6.4.0, wherever proxy inspection is.

        A 2 GB unit on 7.4.4 up to 7.6.4 has none (no proxy at all). On 7.6.5+ such a unit proxies
        mail again and its profiles keep ``feature-set`` (as the lab's tables play it; the 7.6.5
        "Inspection mode feature comparison" page reads otherwise, and the read-back would catch
        a unit that drops the field).
        """
        return self.at_least(6, 4) and self.has_proxy_inspection

    @property
    def small_ram(self) -> bool:
        """The unit is a 2 GB RAM model (``small_ram_model``)."""
        return small_ram_model(self.model)

    @property
    def has_proxy_inspection(self) -> bool:
        """Proxy-based policies exist: not on a 2 GB unit from 7.4.4 until 7.6.5 brought mail back."""
        return not (self.small_ram and self.at_least(7, 4, 4) and not self.at_least(7, 6, 5))

    @property
    def proxy_takes_inspect_all(self) -> bool:
        """A proxy policy may use an SSL profile with ``ssl.inspect-all``: not on a 2 GB unit on 7.6.5+.

        On those units the SSL profile inspects per protocol (``smtps``) instead.
        """
        return not (self.small_ram and self.at_least(7, 6, 5))

    @property
    def proxy_refuses_profiles(self) -> tuple[str, ...]:
        """Policy profiles a proxy policy refuses on this unit (2 GB on 7.6.5+: DNS/web filter, VoIP)."""
        if self.small_ram and self.at_least(7, 6, 5):
            return ("dnsfilter-profile", "webfilter-profile", "voip-profile")
        return ()

    def describe(self) -> str:
        """``FortiOS 7.6.5 on FGT60F`` (the model when known)."""
        return f"FortiOS {self}" + (f" on {self.model}" if self.model else "")

    @property
    def has_other_webmails(self) -> bool:
        """``other-webmails`` is absent in 6.2 and in the 6.4.1 schema."""
        return self.at_least(6, 4) and not (self.family == "6.4" and self.patch == 1)

    @property
    def server_cert_is_list(self) -> bool:
        """ssl-ssh-profile ``server-cert``: a plain string up to 6.4, a list of ``{name}`` from 7.0."""
        return self.at_least(7, 0)

    @property
    def accepts_url_token(self) -> bool:
        """``?access_token=`` is refused by default from 7.4.5 (rest-api-key-url-query)."""
        return not self.at_least(7, 4, 5)

    @property
    def vip_has_status(self) -> bool:
        return self.at_least(7, 0)

    @property
    def dlp_field(self) -> str:
        return "dlp-profile" if self.at_least(7, 2) else "dlp-sensor"
