"""Which FortiGate model a mock device plays (``--model``), and what its RAM class takes away.

FortiGates with 2 GB RAM or less lose proxy features from FortiOS 7.4.4 (FortiOS 7.4.4 release
notes / admin guide, "Proxy-related features not supported on FortiGate 2 GB RAM models": no
proxy-based inspection mode, so no proxy policies and no ``feature-set`` on the email filter
profile). FortiOS 7.6.5 brings proxy back on those units for mail only and refuses an SSL
profile that inspects all ports (``ssl.inspect-all``) in a proxy policy (FortiOS 7.6.5 admin
guide, "Proxy-based inspection for email protocols supported on models with 2 GB RAM", doc
536273; the rules are in ``rules.py``). The 2 GB models (that page and Fortinet KB 389751: the
FortiGate/FortiWiFi 40F, 60E, 60F, 80E and 90E series and their variants, and FortiGate-Rugged
60F in its 2 GB versions) are listed below; everything else the lab knows has more. No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from fortiauto_lab.errors import LabInputError
from fortiauto_lab.release import Release

__all__ = ["DEFAULT_MODEL", "MODELS", "Model", "resolve_model"]


@dataclass(frozen=True)
class Model:
    """A FortiGate model: its name, the short code ``system/status`` reports, its RAM class."""

    name: str  # "FortiGate-60F"
    code: str  # "FGT60F" (monitor/system/status "model", the serial prefix)
    number: str  # "60F" (monitor/system/status "model_number")
    small_ram: bool  # 2 GB RAM or less

    def proxy_removed(self, release: Release) -> bool:
        """No proxy inspection at all: a 2 GB unit on 7.4.4 up to 7.6.4."""
        return self.small_ram and release.at_least(7, 4, 4) and not release.at_least(7, 6, 5)

    def flow_profiles_only(self, release: Release) -> bool:
        """No ``feature-set`` on AV, web, file and email filter profiles: a 2 GB unit on 7.4.4+.

        Still so on 7.6.5+, where mail may be proxied again (7.6.5 admin guide "Inspection mode
        feature comparison": "Feature set option is not available on FortiGate models with 2 GB RAM
        or less. Profile only supports flow mode.").
        """
        return self.small_ram and release.at_least(7, 4, 4)

    def proxy_mail_only(self, release: Release) -> bool:
        """Proxy for mail only, no inspect-all SSL profile in a proxy policy: a 2 GB unit on 7.6.5+."""
        return self.small_ram and release.at_least(7, 6, 5)


def _hw(number: str, *, small: bool, wifi: bool = False) -> Model:
    prefix, short = ("FortiWiFi", "FWF") if wifi else ("FortiGate", "FGT")
    return Model(f"{prefix}-{number}", f"{short}{number.replace('-', '')}", number, small)


MODELS: dict[str, Model] = {
    m.name.lower(): m
    for m in (
        Model("FortiGate-VM64", "FGVM64", "VM64", small_ram=False),
        _hw("40F", small=True),
        _hw("40F-3G4G", small=True),
        _hw("60E", small=True),
        _hw("60F", small=True),
        _hw("61E", small=True),
        _hw("61F", small=True),
        _hw("80E", small=True),
        _hw("81E", small=True),
        _hw("90E", small=True),
        _hw("91E", small=True),
        _hw("40F", small=True, wifi=True),
        _hw("60F", small=True, wifi=True),
        _hw("61F", small=True, wifi=True),
        Model("FortiGateRugged-60F", "FGR60F", "R60F", small_ram=True),
        _hw("70F", small=False),
        _hw("80F", small=False),
        _hw("100F", small=False),
        _hw("200F", small=False),
    )
}
DEFAULT_MODEL = MODELS["fortigate-vm64"]


def resolve_model(name: str | None) -> Model:
    """``FortiGate-60F`` (case-insensitive; ``FGT60F`` and ``60F`` work too); None: FortiGate-VM64.

    Raises:
        LabInputError: a model the lab does not know.
    """
    if name is None:
        return DEFAULT_MODEL
    wanted = name.strip().lower()
    for model in MODELS.values():
        if wanted in (model.name.lower(), model.code.lower(), model.number.lower()):
            return model
    known = ", ".join(m.name for m in MODELS.values())
    raise LabInputError(f"unknown model {name!r}; known: {known}")
