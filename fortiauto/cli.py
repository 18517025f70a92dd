"""The ``fortiauto`` command: parse, call the engine or rollout, render.

The only place errors become exit codes.

Heavy modules (httpx, the engine) are imported inside the commands so that
``fortiauto --help`` stays fast. Exit codes come from ``transaction/outcome.py`` (docs/design.md);
errors before any device is contacted are mapped here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from fortiauto import __version__
from fortiauto.errors import FortiautoError, InputError
from fortiauto.plugins import add_cli_plugins

if TYPE_CHECKING:
    from fortiauto.planfile import SavedPlan
    from fortiauto.results import Plan, RunResult
    from fortiauto.site import Site
    from fortiauto.transaction.planning import Planner

__all__ = ["app", "main"]

# A closed terminal (SIGHUP) is handled like Ctrl-C and SIGTERM: stop, then roll back.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

T = TypeVar("T")

app = typer.Typer(
    name="fortiauto",
    help="Anti-spam logging and SSL inspection for inbound mail on FortiGates, probed and rolled back.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
add_cli_plugins(app)  # sub-commands of installed plugins (`fortiauto lab` with fortiauto[lab])

_state: dict[str, bool] = {"debug": False}


class Output(StrEnum):
    text = "text"
    json = "json"


class PlanOutput(StrEnum):
    text = "text"
    json = "json"
    cli = "cli"


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"fortiauto {__version__}")
        raise typer.Exit(0)


@app.callback()
def _global(
    debug: Annotated[
        bool, typer.Option("--debug", help="Verbose logs on stderr (secrets redacted).")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    _state["debug"] = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not debug:
        # httpx logs full request lines at INFO; fortiauto's own client logs them redacted at DEBUG.
        logging.getLogger("httpx").setLevel(logging.WARNING)


def _err() -> Console:
    """stderr. Full width without a terminal; nothing printed is parsed as rich markup (issue 14)."""
    from fortiauto.report.console import make_console  # noqa: PLC0415

    return make_console(stderr=True)


def _out() -> Console:
    from fortiauto.report.console import make_console  # noqa: PLC0415

    return make_console()


def _load(site_file: Path) -> Site:
    from fortiauto.site.loader import load_site  # noqa: PLC0415

    site = load_site(site_file)
    for warning in site.warnings:
        _err().print(f"warning: {site_file}: {warning}")
    return site


# What the first and the second interrupt do, said at once (tests/e2e/test_rollout_lab.py reads them).
_FIRST_INTERRUPT = "interrupt: no new device starts; in-flight devices finish or roll back"
_SECOND_INTERRUPT = "interrupt again: rolling back in-flight devices (further interrupts change nothing)"


def _run(factory: Callable[[asyncio.Event], Awaitable[T]], *, first_interrupt: str = _FIRST_INTERRUPT) -> T:
    """Run a coroutine under Ctrl-C / SIGTERM / SIGHUP: first stop new work, then cancel in-flight devices.

    Any further signal changes nothing: a device that has written rolls back to its end
    (``transaction.device``), whatever arrives meanwhile.
    """

    async def runner() -> T:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        hits = 0

        def on_signal() -> None:
            nonlocal hits
            hits += 1
            if hits == 1:
                _say(first_interrupt)
                stop.set()
                return
            if hits == 2:
                _say(_SECOND_INTERRUPT)
            for task in asyncio.all_tasks(loop):
                if task.get_name().startswith("fortiauto-device:"):
                    task.cancel()

        for sig in _STOP_SIGNALS:
            loop.add_signal_handler(sig, on_signal)
        try:
            return await factory(stop)
        finally:
            for sig in _STOP_SIGNALS:
                loop.remove_signal_handler(sig)

    return asyncio.run(runner())


def _say(message: str) -> None:
    """A line on stderr that never raises: a closed terminal or pipe must not stop a rollback."""
    try:
        _err().print(message, markup=False)
    except (OSError, ValueError):
        return


def _emit_run(run: RunResult, output: Output, report_dir: Path | None) -> int:
    """Reports, then the run on stdout; a closed pipe or terminal never changes the exit code."""
    if report_dir is not None:
        _write_reports(run, report_dir)
    try:
        _print_run(run, output)
    except OSError:  # `| head`, a closed terminal: the run is over, its exit code stands
        _silence_stdout()
    return run.exit_code


def _write_reports(run: RunResult, report_dir: Path) -> None:
    from fortiauto.report import write_reports  # noqa: PLC0415

    try:
        paths = write_reports(run, report_dir)
    except OSError as exc:
        _say(f"warning: reports not written to {report_dir}: {exc.strerror or exc}")
        return
    for path in paths:
        _say(f"report: {path}")


def _print_run(run: RunResult, output: Output) -> None:
    from fortiauto.report.console import render_summary  # noqa: PLC0415

    if output is Output.json:
        sys.stdout.write(json.dumps(run.to_json(), indent=2, sort_keys=True) + "\n")
        sys.stdout.flush()
        return
    out = _out()
    out.print(render_summary(run))
    for note in run.notes:
        out.print(f"note: {note}", markup=False)
    # A unit changed through FortiManager shows no writes of its own; its changes say it was written.
    wrote = any(d.requests.writes or d.changes for d in run.devices)
    if run.exit_code in (3, 4) and run.command in ("apply", "remove") and wrote:
        where = f" --journal-dir {run.journal_dir}" if run.journal_dir else ""
        out.print(
            f"run id {run.run_id}; undo with: fortiauto rollback --run {run.run_id}{where}", markup=False
        )
    sys.stdout.flush()


def _silence_stdout() -> None:
    # Point fd 1 at /dev/null so that the interpreter's last flush cannot fail again.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


@app.command()
def validate(site_file: Annotated[Path, typer.Argument(metavar="SITE")]) -> int:
    """Check a site file and its certificates; contacts nothing."""
    from fortiauto.report.checked import mail_server_lines  # noqa: PLC0415

    site = _load(site_file)
    out = _out()
    for device in site.devices:
        for server in device.mail_servers:
            for line in mail_server_lines(device, server):
                out.print(line, markup=False)
    servers = sum(len(d.mail_servers) for d in site.devices)
    out.print(f"{site_file}: valid ({len(site.devices)} device(s), {servers} mail server(s))", markup=False)
    return 0


@app.command()
def schema() -> int:
    """Print the site file's JSON Schema (for editors; docs/site.schema.json holds the same)."""
    from fortiauto.site.schema import schema_json  # noqa: PLC0415

    sys.stdout.write(schema_json())
    return 0


@app.command()
def plan(
    site_file: Annotated[Path, typer.Argument(metavar="SITE")],
    output: Annotated[PlanOutput, typer.Option("--output", "-o")] = PlanOutput.text,
    limit: Annotated[
        list[str] | None, typer.Option("--limit", help="Device name or glob (repeatable).")
    ] = None,
    out_file: Annotated[
        Path | None,
        typer.Option("--out", metavar="PLAN.json", help="Save the plan for `apply --plan` (0600)."),
    ] = None,
) -> int:
    """Show what apply would change, per device (read-only: zero writes, no probes)."""
    from fortiauto.report.confirm import plan_totals, totals_line  # noqa: PLC0415
    from fortiauto.report.console import render_plan  # noqa: PLC0415
    from fortiauto.report.to_fortios_cli import plan_to_cli, rollback_to_cli  # noqa: PLC0415

    site = _load(site_file)
    run = _fleet(site, command="plan", check=True, probe=False, limit=limit or [], quiet=True)
    totals = plan_totals(run)
    if out_file is not None:
        _save_plan(run, site, out_file)
    if output is PlanOutput.json:
        payload = {**run.to_json(), "totals": totals.to_json()}
        sys.stdout.write(json.dumps(payload, indent=2, sort_keys=True) + "\n")
        return run.exit_code
    out = _out()
    for result in run.devices:
        if result.plan is None:
            out.print(f"{result.name}: {result.status} - {result.reason}")
        elif output is PlanOutput.cli:
            out.print(plan_to_cli(result.plan), end="", markup=False)
            out.print(rollback_to_cli(result.plan), end="", markup=False)
        else:
            out.print(render_plan(result.plan), markup=False)
    out.print(("# " if output is PlanOutput.cli else "") + totals_line(totals), markup=False)
    return run.exit_code


def _save_plan(run: RunResult, site: Site, out_file: Path) -> None:
    from fortiauto.planfile import save_plan  # noqa: PLC0415

    saved = save_plan(run, site.path, out_file)
    left = f"; not in it: {', '.join(saved.left_out)}" if saved.left_out else ""
    _say(f"plan saved: {out_file} ({len(saved.devices)} device(s){left}); apply it with --plan {out_file}")


# Options that apply and remove share, defined once.
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
CheckOption = Annotated[bool, typer.Option("--check", help="Plan only; no writes.")]
LimitOption = Annotated[list[str] | None, typer.Option("--limit", help="Device name or glob (repeatable).")]
ForceBaselineOption = Annotated[
    bool, typer.Option("--force-baseline", help="Also change devices whose baseline probe fails.")
]
IgnoreWindowOption = Annotated[bool, typer.Option("--ignore-window", help="Start outside the change window.")]
WaitOption = Annotated[bool, typer.Option("--wait", help="Wait for the change window to open.")]
OutputOption = Annotated[Output, typer.Option("--output", "-o")]
ReportDirOption = Annotated[
    Path | None, typer.Option("--report-dir", help="Write JSON, JUnit, Markdown, HTML.")
]
JournalDirOption = Annotated[Path | None, typer.Option("--journal-dir")]


@app.command()
def apply(
    site_file: Annotated[Path, typer.Argument(metavar="SITE")],
    yes: YesOption = False,
    check: CheckOption = False,
    diff: Annotated[bool, typer.Option("--diff", help="Show the per-key diff of each change.")] = False,
    limit: LimitOption = None,
    force_baseline: ForceBaselineOption = False,
    ignore_window: IgnoreWindowOption = False,
    retry_full: Annotated[
        bool, typer.Option("--retry-full", help="Try the full fix again on devices left on a fallback rung.")
    ] = False,
    wait: WaitOption = False,
    output: OutputOption = Output.text,
    report_dir: ReportDirOption = None,
    journal_dir: JournalDirOption = None,
    plan_file: Annotated[
        Path | None,
        typer.Option(
            "--plan",
            metavar="PLAN.json",
            help="Apply exactly this saved plan (`plan --out`); a device that changed since is refused.",
        ),
    ] = None,
) -> int:
    """Plan, confirm, apply, probe, and roll back automatically when mail stops flowing."""
    site = _load(site_file)
    saved = _saved_plan(plan_file, site, limit or []) if plan_file is not None else None
    devices = list(saved.devices) if saved is not None and not limit else limit or []
    if not check:
        preview = _before_writes(site, devices, saved, yes=yes, wait=wait, ignore_window=ignore_window)
        if preview is not None:
            return _emit_run(preview, output, report_dir)
    run = _fleet(
        site,
        command="apply",
        check=check,
        probe=not check,
        limit=devices,
        saved_plan=saved.drift if saved is not None else None,
        force_baseline=force_baseline,
        ignore_window=ignore_window,
        retry_full=retry_full,
        wait=wait,
        journal_dir=journal_dir,
        plain=output is Output.json,  # beside JSON on stdout, plain event lines on stderr
        show_diff=diff or check,
    )
    return _emit_run(run, output, report_dir)


@app.command()
def remove(
    site_file: Annotated[Path, typer.Argument(metavar="SITE")],
    yes: YesOption = False,
    check: CheckOption = False,
    limit: LimitOption = None,
    force_baseline: ForceBaselineOption = False,
    ignore_window: IgnoreWindowOption = False,
    wait: WaitOption = False,
    output: OutputOption = Output.text,
    report_dir: ReportDirOption = None,
    journal_dir: JournalDirOption = None,
) -> int:
    """Take the recommended configuration back off (state: absent): the policy rebound to the site's
    `previous` profiles, fortiauto's own objects deleted; probed, journaled and rolled back like apply."""
    from fortiauto.remove import RemovalPlanner  # noqa: PLC0415

    site = _load(site_file)
    planner = RemovalPlanner()
    devices = limit or []
    if check and output is Output.text:
        return _print_plans(
            _fleet(site, command="plan", check=True, probe=False, limit=devices, quiet=True, planner=planner)
        )
    if not check:
        preview = _before_writes(
            site,
            devices,
            None,
            yes=yes,
            wait=wait,
            ignore_window=ignore_window,
            planner=planner,
            verb="Remove",
        )
        if preview is not None:
            return _emit_run(preview, output, report_dir)
    run = _fleet(
        site,
        command="remove",
        check=check,
        probe=not check,
        limit=devices,
        planner=planner,
        force_baseline=force_baseline,
        ignore_window=ignore_window,
        wait=wait,
        journal_dir=journal_dir,
        plain=output is Output.json,
        show_diff=True,
    )
    return _emit_run(run, output, report_dir)


def _print_plans(run: RunResult) -> int:
    from fortiauto.report.confirm import plan_totals, totals_line  # noqa: PLC0415
    from fortiauto.report.console import render_plan  # noqa: PLC0415

    out = _out()
    for result in run.devices:
        text = (
            render_plan(result.plan) if result.plan else f"{result.name}: {result.status} - {result.reason}"
        )
        out.print(text, markup=False)
    out.print(totals_line(plan_totals(run)), markup=False)
    return run.exit_code


def _saved_plan(plan_file: Path, site: Site, limit: list[str]) -> SavedPlan:
    from fortiauto.planfile import load_plan  # noqa: PLC0415

    saved = load_plan(plan_file, site.path)
    if not saved.devices:
        raise InputError(f"{plan_file}: the saved plan has no device to apply")
    for name, why in saved.left_out.items():
        if not limit:
            _say(f"note: {name} is not in the saved plan ({why}); it is not contacted")
    return saved


def _check_window(site: Site, *, wait: bool, ignore: bool) -> None:
    """Outside the change window: refuse (exit 5) before the preview and the prompt, not after."""
    from datetime import UTC, datetime  # noqa: PLC0415

    from fortiauto.fleet.window import check_window  # noqa: PLC0415

    check_window(site.change_window, datetime.now(UTC), wait=wait, ignore=ignore)


def _before_writes(
    site: Site,
    limit: list[str],
    saved: SavedPlan | None,
    *,
    yes: bool,
    wait: bool,
    ignore_window: bool,
    planner: Planner | None = None,
    verb: str = "Apply",
) -> RunResult | None:
    """What a writing command does first: the window, the confirmation, the wait for the window.

    Returns the preview when the command ends there (declined, or nothing to change).
    """
    _check_window(site, wait=wait, ignore=ignore_window)
    if not yes:
        preview = _confirm_apply(
            site, limit, saved, wait=wait, ignore_window=ignore_window, planner=planner, verb=verb
        )
        if preview is not None:
            return preview
    if wait:
        _wait_for_window(site)
    return None


def _confirm_apply(
    site: Site,
    limit: list[str],
    saved: SavedPlan | None,
    *,
    wait: bool,
    ignore_window: bool,
    planner: Planner | None = None,
    verb: str = "Apply",
) -> RunResult | None:
    """The plan, what is about to happen, and the question; the preview itself when nothing would change."""
    from datetime import UTC, datetime  # noqa: PLC0415

    from fortiauto.fleet import select_devices  # noqa: PLC0415
    from fortiauto.report.confirm import confirmation_lines  # noqa: PLC0415
    from fortiauto.report.console import render_plan  # noqa: PLC0415

    preview = _fleet(site, command="plan", check=True, probe=False, limit=limit, quiet=True, planner=planner)
    err = _err()
    for result in preview.devices:
        err.print(render_plan(result.plan) if result.plan else f"{result.name}: {result.reason}")
        drift = saved.drift(result.name, result.plan) if saved is not None and result.plan else None
        if drift is not None:
            err.print(f"  ! changed since the saved plan, apply refuses it: {drift}")
    if not any(r.changes for r in preview.devices):
        return preview
    summary = confirmation_lines(
        site, select_devices(site, limit), preview, datetime.now(UTC), wait=wait, ignore_window=ignore_window
    )
    for line in summary:
        err.print(line)
    if not sys.stdin.isatty():
        raise InputError(f"{verb.lower()} needs --yes when not run from a terminal; nothing was changed")
    question = "Apply these changes?" if verb == "Apply" else "Take the configuration off as planned above?"
    if not _ask(question):
        raise InputError("not confirmed; nothing was changed")
    return None


def _ask(question: str) -> bool:
    """A yes/no question on the terminal, before any write; Ctrl-C there ends the command (130).

    The interrupt exits from its handler instead of raising KeyboardInterrupt: Python discards an
    exception raised while the collector runs a finalizer ("Exception ignored in ..."), and a
    discarded one left the question waiting for an answer (seen once in CI under load). Nothing
    has been written at this point, and the kernel frees the locks of an exiting process.
    """

    def on_interrupt(signum: int, frame: object) -> None:
        _say("\nerror: aborted at the prompt; nothing was changed")
        os._exit(130)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        return typer.confirm(question, err=True)
    finally:
        signal.signal(signal.SIGINT, previous)


def _wait_for_window(site: Site) -> None:
    """--wait: count down to the window's start; an interrupt meanwhile ends the command (130)."""
    from datetime import UTC, datetime  # noqa: PLC0415

    from fortiauto.report.countdown import count_down  # noqa: PLC0415

    window = site.change_window
    if window is None or datetime.now(UTC) >= window.start:
        return
    message = "interrupt: stopped waiting for the change window; nothing was changed"
    if not _run(lambda stop: count_down(_err(), window.start, stop), first_interrupt=message):
        _fail("interrupted while waiting for the change window; nothing was changed", 130)


def _fleet(
    site: Site,
    *,
    command: str,
    check: bool,
    probe: bool,
    limit: list[str],
    force_baseline: bool = False,
    ignore_window: bool = False,
    retry_full: bool = False,
    wait: bool = False,
    journal_dir: Path | None = None,
    quiet: bool = False,
    plain: bool = False,
    show_diff: bool = True,
    saved_plan: Callable[[str, Plan], str | None] | None = None,
    planner: Planner | None = None,
) -> RunResult:
    from fortiauto.events import Events  # noqa: PLC0415
    from fortiauto.fleet import FleetOptions, new_run_id, run_fleet, select_devices  # noqa: PLC0415
    from fortiauto.fortimanager.connect import connect_for  # noqa: PLC0415
    from fortiauto.journal import journal_dir as default_journal_dir  # noqa: PLC0415
    from fortiauto.probe import run_probe  # noqa: PLC0415
    from fortiauto.probe.delivery import SiteDelivery  # noqa: PLC0415
    from fortiauto.report.live import fleet_reporters  # noqa: PLC0415

    options = FleetOptions(
        run_id=new_run_id(),
        journal_dir=default_journal_dir(site.path, journal_dir),
        check=check,
        probe=probe,
        force_baseline=force_baseline,
        ignore_window=ignore_window,
        retry_full=retry_full,
        wait=wait,
        limit=tuple(limit),
        command=command,
        saved_plan=saved_plan,
        planner=planner,
    )
    # Live progress on a terminal, plain lines otherwise; it needs the selected devices up front.
    names = [device.name for device in select_devices(site, limit)]
    with fleet_reporters(
        _err(), names, quiet=quiet, plain=plain, show_plans=not check, show_diff=show_diff
    ) as reporters:

        async def fleet(stop: asyncio.Event) -> RunResult:
            # Direct units get their REST client; units routed through FortiManager share one session.
            async with connect_for(site, writing=not check) as client_factory:
                return await run_fleet(
                    site,
                    options=options,
                    client_factory=client_factory,
                    prober=run_probe,
                    events=Events(reporters),
                    stop=stop,
                    delivery=SiteDelivery(),
                )

        return _run(fleet)


@app.command()
def probe(
    site_file: Annotated[Path, typer.Argument(metavar="SITE")],
    device: Annotated[str | None, typer.Option("--device", help="Only this device.")] = None,
    output: Annotated[Output, typer.Option("--output", "-o")] = Output.text,
) -> int:
    """Run the SMTP probe through each mail server's VIP (no API calls)."""
    from fortiauto.probe import run_probe  # noqa: PLC0415
    from fortiauto.report.probe_text import render_probe  # noqa: PLC0415

    site = _load(site_file)
    devices = [d for d in site.devices if device is None or d.name == device]
    if not devices:
        raise InputError(f"{site_file}: no device named {device!r}")

    async def run_all(_: asyncio.Event) -> list[tuple[str, str, Any]]:
        results = []
        for dev in devices:
            for ms in dev.mail_servers:
                pin = ms.certificate.fingerprint_sha256 or None
                results.append((dev.name, ms.name, await run_probe(ms.probe, pin_sha256=pin)))
        return results

    from fortiauto.transaction.outcome import probe_exit_code  # noqa: PLC0415

    results = _run(run_all)
    if output is Output.json:
        payload = [{"device": d, "mail_server": m, "probe": r.to_json()} for d, m, r in results]
        sys.stdout.write(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    else:
        for dev_name, ms_name, result in results:
            _out().print(f"== {dev_name} / {ms_name}", markup=False)
            _out().print(render_probe(result), markup=False)
    return probe_exit_code([r for _, _, r in results])


@app.command()
def rollback(
    run: Annotated[str | None, typer.Option("--run", help="Run id to undo.")] = None,
    last: Annotated[bool, typer.Option("--last", help="Undo the most recent run.")] = False,
    journal_dir: Annotated[Path | None, typer.Option("--journal-dir")] = None,
    output: Annotated[Output, typer.Option("--output", "-o")] = Output.text,
    report_dir: Annotated[Path | None, typer.Option("--report-dir")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Also restore objects someone changed since the run.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> int:
    """Undo a run from its journal alone (also after a crash); idempotent."""
    from fortiauto.fleet import rollback_run  # noqa: PLC0415
    from fortiauto.journal import journal_dir as default_journal_dir  # noqa: PLC0415
    from fortiauto.journal import latest_run_id  # noqa: PLC0415

    if (run is None) == (not last):
        raise InputError("give exactly one of --run ID or --last")
    directory = default_journal_dir(None, journal_dir)
    run = run or latest_run_id(directory)  # resolved once: the run confirmed is the run undone
    if not yes:
        _confirm_rollback(directory, run, force=force)
    from fortiauto.events import Events  # noqa: PLC0415
    from fortiauto.report.live import fleet_reporters  # noqa: PLC0415

    # Devices are learnt from the journal as they start; the live view adds rows for them.
    with fleet_reporters(_err(), [], plain=output is Output.json, show_plans=False) as reporters:
        result = _run(lambda stop: rollback_run(directory, run_id=run, events=Events(reporters), force=force))
    for note in result.notes:
        if note.startswith("warning: "):
            _err().print(note, markup=False)
    return _emit_run(result, output, report_dir)


def _confirm_rollback(directory: Path, run_id: str, *, force: bool) -> None:
    """What the undo will touch, and the question; a run with nothing left to undo asks nothing."""
    from fortiauto.journal import pending_undos, read_journal  # noqa: PLC0415

    pending = {n: e for n, e in pending_undos(read_journal(directory / f"{run_id}.jsonl")).items() if e}
    if not pending:
        return
    err = _err()
    err.print(f"About to undo run {run_id} (journal {directory}):", markup=False)
    for name, entries in pending.items():
        objects = ", ".join(dict.fromkeys(f"{e.change.path}/{e.change.mkey}" for e in entries))
        err.print(f"  {name}: {len(entries)} write(s) to undo ({objects})", markup=False)
    err.print(
        "Each object is restored only if it is still as the run left it"
        + (" (--force: restored even if someone changed it since)" if force else ""),
        markup=False,
    )
    if not sys.stdin.isatty():
        raise InputError("rollback needs --yes when not run from a terminal; nothing was changed")
    if not _ask("Undo these writes?"):
        raise InputError("not confirmed; nothing was changed")


class InventoryOutput(StrEnum):
    text = "text"
    json = "json"
    site = "site"


@app.command()
def inventory(
    fortimanager: Annotated[
        Path,
        typer.Option(
            "--fortimanager",
            metavar="SITE",
            help="A site file whose fortimanager: block names the FortiManager (devices may be absent).",
        ),
    ],
    output: Annotated[InventoryOutput, typer.Option("--output", "-o")] = InventoryOutput.text,
    vdom: Annotated[str, typer.Option("--vdom", help="The vdom to route if a device has several.")] = "root",
) -> int:
    """List what FortiManager manages (model, version, HA, sync); --output site writes a site file for it."""
    from fortiauto.fortimanager.connect import client_for_fortimanager  # noqa: PLC0415
    from fortiauto.fortimanager.inventory import render_table, site_skeleton  # noqa: PLC0415
    from fortiauto.site.loader import load_fortimanager  # noqa: PLC0415

    spec = load_fortimanager(fortimanager)

    async def fetch(_: asyncio.Event) -> list[Any]:
        async with client_for_fortimanager(spec) as fmg:
            return await fmg.devices()

    devices = _run(fetch)
    if output is InventoryOutput.json:
        sys.stdout.write(json.dumps([d.to_json() for d in devices], indent=2, sort_keys=True) + "\n")
    elif output is InventoryOutput.site:
        sys.stdout.write(site_skeleton(devices, fortimanager, vdom=vdom))
    else:
        sys.stdout.write(render_table(devices))
    return 0


def _fail(message: str, code: int) -> NoReturn:
    _say(f"error: {message}")
    sys.exit(code)


class _PipeSafe:
    """stderr that goes quiet once its reader is gone (``2>&1 | head``, a closed terminal).

    A run that has written to a firewall must finish its transaction whatever happens to the
    terminal; so a failed write or flush on stderr is swallowed, and later text discarded.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._broken = False

    def write(self, text: str) -> int:
        if not self._broken:
            try:
                self._stream.write(text)
            except (OSError, ValueError):
                self._broken = True
        return len(text)

    def flush(self) -> None:
        if not self._broken:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self._broken = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main(argv: list[str] | None = None) -> NoReturn:
    """Console entry point: run the app, map errors to exit codes; tracebacks only with --debug."""
    if not isinstance(sys.stderr, _PipeSafe):
        sys.stderr = _PipeSafe(sys.stderr)
    try:
        code = app(args=argv, standalone_mode=False)
    except FortiautoError as exc:
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted; nothing was changed", 130)
    except Exception as exc:  # click's own (or typer's vendored click's) exceptions, or a bug
        kind = _click_kind(exc)
        if kind == "Exit":
            sys.exit(getattr(exc, "exit_code", 0))
        if kind == "Abort":
            _fail("aborted at the prompt; nothing was changed", 130)
        if kind == "ClickException":
            _fail(exc.format_message(), 2)  # type: ignore[attr-defined]
        if _state["debug"]:
            raise
        _fail(f"unexpected {type(exc).__name__}: {exc} (a bug; rerun with --debug for the traceback)", 1)
    sys.exit(code if isinstance(code, int) else 0)


def _click_kind(exc: BaseException) -> str | None:
    """Which of click's control exceptions ``exc`` is, whether from click or typer's own copy
    (typer 0.29's prompts raise ``typer.exceptions.Abort`` on Ctrl-C and end of input)."""
    modules = ("click.exceptions", "typer.exceptions")
    names = {cls.__name__ for cls in type(exc).__mro__ if cls.__module__.endswith(modules)}
    return next((kind for kind in ("Exit", "Abort", "ClickException") if kind in names), None)
