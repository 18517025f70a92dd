"""Plugins found through entry points: extra ``fortiauto`` sub-commands and delivery confirmers.

fortiauto knows no plugin by code. An installed distribution registers a typer app in the
``fortiauto.cli`` group (its name becomes the sub-command) or a ``DeliveryCheck`` factory in
``fortiauto.delivery`` (its name is what ``probe: {confirm_delivery: NAME}`` says). The mock
FortiGate lab ships both as ``lab`` with the ``fortiauto[lab]`` extra.
"""

from __future__ import annotations

import functools
import logging
from importlib.metadata import EntryPoint, entry_points

import typer

__all__ = ["CLI_GROUP", "DELIVERY_GROUP", "add_cli_plugins", "install_hint", "plugin_names"]

logger = logging.getLogger(__name__)

CLI_GROUP = "fortiauto.cli"
DELIVERY_GROUP = "fortiauto.delivery"
# Sub-commands users are told about when their plugin is missing: name -> what to install.
_KNOWN_EXTRAS = {"lab": "fortiauto[lab]"}


def plugin_names(group: str) -> list[str]:
    """The names registered in ``group``, sorted."""
    return list(_names(group))


@functools.lru_cache(maxsize=8)
def _names(group: str) -> tuple[str, ...]:
    # Scanning every installed distribution's entry points costs ~3 ms; the site model asks for
    # each mail server's confirmer name (8 % of a 100-device no-op's CPU). What is installed does
    # not change while one fortiauto process runs.
    return tuple(sorted({ep.name for ep in entry_points(group=group)}))


def install_hint(name: str) -> str:
    """``"; pip install 'fortiauto[lab]'"`` for a plugin fortiauto knows the extra of, else ``""``."""
    return f"; pip install '{_KNOWN_EXTRAS[name]}'" if name in _KNOWN_EXTRAS else ""


def _load_app(ep: EntryPoint) -> typer.Typer | None:
    try:
        loaded = ep.load()
    except Exception:  # a broken plugin must not take the whole CLI down
        logger.warning("plugin %s=%s does not load", ep.name, ep.value, exc_info=True)
        return None
    return loaded if isinstance(loaded, typer.Typer) else None


def _add_missing(app: typer.Typer, name: str, extra: str) -> None:
    """``fortiauto NAME ...`` (any arguments) only says what to install, exit 2."""

    def say_install() -> None:
        typer.echo(f"error: `fortiauto {name}` is not installed: pip install '{extra}'", err=True)
        raise typer.Exit(2)

    settings = {"allow_extra_args": True, "ignore_unknown_options": True}
    app.command(
        name, help=f"Not installed: pip install '{extra}'.", context_settings=settings, add_help_option=False
    )(say_install)


def add_cli_plugins(app: typer.Typer) -> None:
    """Add every installed ``fortiauto.cli`` app to ``app``; a hint for known ones that are missing."""
    added: set[str] = set()
    for ep in entry_points(group=CLI_GROUP):
        plugin = _load_app(ep)
        if plugin is not None and ep.name not in added:
            app.add_typer(plugin, name=ep.name)
            added.add(ep.name)
    for name, extra in _KNOWN_EXTRAS.items():
        if name not in added:
            _add_missing(app, name, extra)
