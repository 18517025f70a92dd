"""FortiOS version facts: parse ``vX.Y.Z`` and answer the feature questions templates and tasks ask.

Every field-name switch fortiauto honours lives here, so a new FortiOS quirk is one
property, not a branch scattered over the tasks (see docs/reference/fortios-objects.md,
"Gotchas" 1). No I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fortiauto.errors import UnsupportedVersion

__all__ = ["SUPPORTED_FAMILIES", "FortiOSVersion"]

SUPPORTED_FAMILIES = ("6.4", "7.0", "7.2", "7.4")

_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?$")


@dataclass(frozen=True, order=True)
class FortiOSVersion:
    """A FortiOS release such as 7.0.12, comparable and hashable."""

    major: int
    minor: int
    patch: int = 0

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

    def require_supported(self) -> FortiOSVersion:
        """Return self, or raise ``UnsupportedVersion`` naming the supported families."""
        if self.family not in SUPPORTED_FAMILIES:
            raise UnsupportedVersion(
                f"FortiOS {self} is not supported; supported: {', '.join(SUPPORTED_FAMILIES)}"
            )
        return self

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
        """``feature-set`` (flow/proxy) on email filter and other profiles exists from 6.4.0."""
        return self.at_least(6, 4)

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
