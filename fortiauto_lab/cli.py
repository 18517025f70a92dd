"""``fortiauto lab ...``: the lab's commands, plugged into the fortiauto CLI through an entry point.

pyproject.toml registers ``app`` as the ``lab`` entry point of the ``fortiauto.cli`` group;
fortiauto adds every such app as a sub-command. Importing this module stays light (typer and
the fault registry only): the lab's servers, and aiohttp and aiosmtpd with them, load when
``lab up`` runs, and their absence is reported as "install fortiauto[lab]".
"""

from __future__ import annotations

from itertools import groupby
from pathlib import Path
from typing import Annotated

import typer

from fortiauto_lab.errors import LabInputError
from fortiauto_lab.faults import describe_registry
from fortiauto_lab.release import FAMILIES

__all__ = ["app", "faults_help", "faults_markdown"]

INSTALL_HINT = "the lab needs its extra: pip install 'fortiauto[lab]'"

app = typer.Typer(
    help="The built-in mock FortiGate lab.", no_args_is_help=True, add_completion=False, rich_markup_mode=None
)


def faults_help() -> str:
    """Every fault and device state with its argument and meaning, from the registry (``lab up --help``)."""
    lines = ["Faults and device states for --faults 'DEVICE:NAME[=ARG],...;...' (DEVICE may be a glob):"]
    for group, entries in groupby(describe_registry(), key=lambda entry: entry[0]):
        lines.append("")
        lines.append(f"{group}:")
        lines.extend(f"  {usage:<26} {meaning}" for _, usage, meaning in entries)
    return "\n".join(lines)


def faults_markdown() -> str:
    """The registry as the Markdown table docs/lab.md carries (a test keeps the two in step)."""
    rows = ["| group | fault or state | meaning |", "|---|---|---|"]
    rows += [f"| {group} | `{usage}` | {meaning} |" for group, usage, meaning in describe_registry()]
    return "\n".join(rows)


def _epilog() -> str:
    # "\b" keeps click from re-wrapping the table.
    return "\b\n" + faults_help().replace("\n\n", "\n\n\b\n")


@app.command("up", epilog=_epilog())
def up(
    *,
    devices: Annotated[int, typer.Option("--devices", min=1, max=1000, help="How many FortiGates.")] = 1,
    version: Annotated[
        str, typer.Option("--version", help=f"FortiOS family ({' '.join(FAMILIES)}) or release (7.6.5).")
    ] = "7.0",
    state_dir: Annotated[
        Path, typer.Option("--state-dir", help="Where site.yml, ca.pem, lab.json ... go; reused on restart.")
    ] = Path("lab-state"),
    faults: Annotated[str | None, typer.Option("--faults", help="e.g. 'fgt-001:banner-hold-on-utm'")] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="FortiGate model, e.g. FortiGate-60F (default FortiGate-VM64)."),
    ] = None,
    base_port: Annotated[
        int | None,
        typer.Option("--base-port", help="Fixed ports: device i listens on BASE+5i (HTTPS) .. BASE+5i+4."),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict/--lenient",
            help="Conservative readings of undocumented behaviour (the default): no email filter log "
            "without spam checks; per-protocol SSL blocks refused and hidden beside inspect-all. "
            "--lenient logs and stores both.",
        ),
    ] = True,
    fortimanager: Annotated[
        bool,
        typer.Option(
            "--fortimanager",
            help="Also run a mock FortiManager managing every device; site.yml then goes through it.",
        ),
    ] = False,
    fortimanager_packages: Annotated[
        str,
        typer.Option(
            "--fortimanager-packages",
            help="With --fortimanager: per-device (a policy package mail-edge-<device> each) or shared "
            "(one package mail-edge installed to every device).",
        ),
    ] = "per-device",
    maildir: Annotated[
        Path | None,
        typer.Option("--maildir", help="Also write every delivered message into this Maildir (for IMAP)."),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option("--backend", help="HOST:PORT of an external SMTP server the VIPs relay to instead."),
    ] = None,
    log_device: Annotated[
        str,
        typer.Option("--log-device", help="Where the units log: memory, disk (memory off) or fortianalyzer."),
    ] = "memory",
    mail_chain: Annotated[
        bool,
        typer.Option(
            "--mail-chain",
            help="mx1's certificate comes from an intermediate CA: certs/mx1-chain.pem must be imported too.",
        ),
    ] = False,
) -> None:
    """Run a mock FortiGate fleet until Ctrl-C; writes site.yml, ca.pem, hosts.yml and lab.json."""
    try:
        from fortiauto_lab.server import run_lab  # noqa: PLC0415 - aiohttp/aiosmtpd load here only
    except ImportError as exc:
        typer.echo(f"error: {INSTALL_HINT} ({exc.name} is missing)", err=True)
        raise typer.Exit(2) from None
    try:
        code = run_lab(
            state_dir,
            devices=devices,
            version=version,
            faults=faults,
            model=model,
            base_port=base_port,
            strict=strict,
            fortimanager=fortimanager,
            fortimanager_packages=fortimanager_packages,
            maildir=maildir,
            backend=backend,
            log_device=log_device,
            mail_chain=mail_chain,
        )
    except LabInputError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)
