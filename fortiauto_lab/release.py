"""Which FortiOS release a mock FortiGate plays: ``Release`` (parse, compare) and the releases the lab serves.

The lab's own type, independent of the product's version handling, so that a wrong version
fact in fortiauto is not copied into the oracle its tests trust. What a release *has* is
asked with ``Release.has(fact)``; the facts and their version ranges live in ``facts.py``.
No I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fortiauto_lab.errors import LabInputError
from fortiauto_lab.facts import FACTS

__all__ = ["FAMILIES", "Release", "build_number", "resolve_release"]

# The release each family plays by default. 7.4.8 is past 7.4.5 (URL tokens off); 7.6.4 is the
# newest release the fortinet.fortios 2.4.2 schema tracks and is past 7.6.3 (/logincheck gives
# no session cookie, KB "FortiOS v7.6.3: /logincheck no longer returns a session cookie").
# 8.0.0 is played with the newest known schema plus what the 8.0.0 CLI reference adds, so a
# tool's handling of a family it does not know yet can be tried against it.
FAMILIES = {"6.4": "6.4.14", "7.0": "7.0.15", "7.2": "7.2.10", "7.4": "7.4.8", "7.6": "7.6.4", "8.0": "8.0.0"}

# Builds of the releases the lab plays (FortiOS release notes, "Introduction and supported
# models": e.g. 7.2.10 build 1706, 7.4.0 build 2360); other releases get a plausible number.
_BUILDS = {
    "6.4.14": 2093,
    "7.0.12": 523,
    "7.0.15": 632,
    "7.2.10": 1706,
    "7.4.8": 2795,
    "7.6.4": 3596,
    "7.6.5": 3651,
}

_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?$")


@dataclass(frozen=True, order=True)
class Release:
    """A FortiOS release such as 7.0.12, comparable and hashable."""

    major: int
    minor: int
    patch: int = 0

    @classmethod
    def parse(cls, text: str) -> Release:
        """``v7.0.12``, ``7.0.12`` or ``7.0`` (patch 0).

        Raises:
            LabInputError: not a version.
        """
        match = _VERSION_RE.match(text.strip())
        if not match:
            raise LabInputError(f"not a FortiOS version: {text!r}")
        major, minor, patch = match.groups()
        return cls(int(major), int(minor), int(patch or 0))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def tag(self) -> str:
        """The form every envelope carries: ``v7.0.12``."""
        return f"v{self}"

    @property
    def family(self) -> str:
        return f"{self.major}.{self.minor}"

    @property
    def parts(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def at_least(self, major: int, minor: int, patch: int = 0) -> bool:
        return self.parts >= (major, minor, patch)

    def has(self, fact: str) -> bool:
        """Whether this release has a named fact of ``facts.FACTS`` (a field, a behaviour)."""
        return FACTS[fact].holds(self.parts)


def resolve_release(text: str) -> Release:
    """``"7.0"`` -> 7.0.15; a full ``"7.0.12"`` as given; its family must be one the lab plays.

    Raises:
        LabInputError: not a version, or a family the lab does not play.
    """
    release = Release.parse(FAMILIES.get(text.strip(), text))
    if release.family not in FAMILIES:
        raise LabInputError(f"the lab does not play FortiOS {release}; families: {', '.join(FAMILIES)}")
    return release


def build_number(release: Release) -> int:
    return _BUILDS.get(str(release), 1000 + release.minor * 100 + release.patch)
