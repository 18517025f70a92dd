"""Fleet progress on a terminal: a progress bar (devices done / total) over a live per-device table.

An ``events.Reporter`` like ``console.ConsoleReporter``: the engine and the rollout emit events,
this module only keeps a small per-device state machine (phase, status, last detail) and draws
it with ``rich.live``. ``fleet_reporters`` is what ``cli`` calls: the live view on a real
terminal, the plain one-line ``ConsoleReporter`` elsewhere (pipes, CI logs), none when quiet.
Everything shown comes from result objects, which hold no secrets; text from a device is put
in ``Text`` objects (never parsed as markup), one line each.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from fortiauto.events import NullReporter, Reporter

# The summary table's palette, so a device keeps its colour from live view to summary.
from fortiauto.report.console import STATUS_STYLE as _STATUS_STYLE
from fortiauto.report.console import ConsoleReporter, device_line, render_plan, unseen_warnings
from fortiauto.report.safe import one_line
from fortiauto.results import Change, DeviceResult, Plan, ProbeResult

__all__ = ["DeviceRow", "LiveReporter", "fleet_reporters"]

_ACTIVE_STYLE = {"rollback": "yellow"}
_REFRESH_PER_SECOND = 8
_CHROME_LINES = 7  # progress line, table title, header, rules and caption around the rows


@dataclass
class DeviceRow:
    """What the live table shows for one device; ``status`` is set once the device has finished."""

    name: str
    phase: str = "pending"
    detail: str = ""
    status: str | None = None
    planned: int = 0
    applied: int = 0
    order: int = 0  # when it last moved: in-flight and recent devices are shown first

    @property
    def active(self) -> bool:
        return self.status is None and self.phase != "pending"


def _verdict(result: ProbeResult) -> str:
    return "passed" if result.passed else f"FAILED {result.failure_class}"


class LiveReporter(NullReporter):
    """Progress bar plus per-device status table, redrawn in place; use it as a context manager.

    Events arrive on the event loop's thread while rich redraws from its refresh thread, so the
    state is guarded by a lock. A finished device also gets one permanent line above the live
    view, so the scrollback keeps a record once the (transient) view is gone.
    """

    def __init__(
        self,
        console: Console,
        devices: Sequence[str],
        *,
        show_plans: bool = True,
        show_diff: bool = False,
        max_rows: int | None = None,
        auto_refresh: bool = True,
    ) -> None:
        self.console = console
        self.show_plans = show_plans
        self.show_diff = show_diff
        self.rows: dict[str, DeviceRow] = {name: DeviceRow(name) for name in devices}
        self._max_rows = max_rows
        self._auto_refresh = auto_refresh
        self._lock = threading.Lock()
        self._clock = 0
        self._progress = Progress(
            TextColumn("[bold]devices"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[tally]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self._task = self._progress.add_task("devices", total=len(self.rows), tally="")
        self._live: Live | None = None
        self._shown: dict[str, set[str]] = {}  # per device, the warnings already printed

    # -- context manager -------------------------------------------------------------------

    def __enter__(self) -> LiveReporter:
        self._live = Live(
            self,
            console=self.console,
            auto_refresh=self._auto_refresh,
            refresh_per_second=_REFRESH_PER_SECOND,
            transient=True,  # the summary table printed after the run replaces the live view
            redirect_stdout=False,
            redirect_stderr=True,  # e.g. the Ctrl-C notice lands above the view, not through it
        )
        self._live.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    # -- events ----------------------------------------------------------------------------

    def device_started(self, device: str) -> None:
        self._move(device, "connect", "started")

    def change_planned(self, device: str, plan: Plan) -> None:
        count = len(plan.changes)
        rung = f" (fallback rung {plan.rung})" if plan.rung else ""
        with self._lock:
            row = self._row(device)
            row.planned, row.applied = count, 0
        if count:
            self._move(device, "apply", f"0/{count} change(s) planned{rung}")
        else:
            self._move(device, "plan", f"no changes{rung}")
        if self.show_plans and self.show_diff:
            # Console.print while the view is live goes above it and leaves the view intact.
            self.console.print(Text(render_plan(plan)), highlight=False)
            with self._lock:
                self._shown.setdefault(device, set()).update(plan.warnings)

    def change_applied(self, device: str, change: Change) -> None:
        with self._lock:
            row = self._row(device)
            row.applied += 1
            done, total = row.applied, row.planned
        # After the last write the engine probes: show that, not a finished-looking "5/5".
        phase = "probe" if done >= total else "apply"
        self._move(device, phase, f"{done}/{total} applied: {change.action} {change.path}/{change.mkey}")

    def probe_finished(self, device: str, stage: str, result: ProbeResult) -> None:
        verdict = _verdict(result)
        if stage == "baseline":
            self._move(device, "plan" if result.passed else "baseline", f"baseline probe {verdict}")
        elif stage in ("after", "delivery"):
            self._move(device, "commit" if result.passed else "rollback", f"{stage} probe {verdict}")
        else:
            self._move(device, "rollback" if stage == "confirm" else stage, f"{stage} probe {verdict}")

    def device_finished(self, result: DeviceResult) -> None:
        with self._lock:
            row = self._row(result.name)
            row.phase, row.status, row.detail = "done", result.status, one_line(result.reason)
            row.order = self._tick()
            self._progress.update(self._task, completed=self.done, tally=self._tally())
        self.console.print(device_line(result), highlight=False)
        with self._lock:
            shown = self._shown.pop(result.name, set())
        for line in unseen_warnings(result, shown):
            self.console.print(Text(line), highlight=False)
        self._refresh()

    # -- state -----------------------------------------------------------------------------

    @property
    def done(self) -> int:
        return sum(1 for row in self.rows.values() if row.status is not None)

    def _row(self, device: str) -> DeviceRow:
        # A device not announced up front (e.g. a rollback of a run naming more devices) still shows.
        if device not in self.rows:
            self.rows[device] = DeviceRow(device)
            self._progress.update(self._task, total=len(self.rows))
        return self.rows[device]

    def _tick(self) -> int:
        self._clock += 1
        return self._clock

    def _move(self, device: str, phase: str, detail: str) -> None:
        with self._lock:
            row = self._row(device)
            row.phase, row.detail, row.order = phase, one_line(detail), self._tick()
        self._refresh()

    def _tally(self) -> str:
        counts = Counter(row.status for row in self.rows.values() if row.status is not None)
        return " · ".join(f"{n} {status}" for status, n in sorted(counts.items()))

    # -- drawing ---------------------------------------------------------------------------

    def _refresh(self) -> None:
        # With auto refresh the refresh thread redraws; redrawing on every event would cost a
        # full table render per event on large fleets.
        if self._live is not None and not self._auto_refresh:
            self._live.refresh()

    def visible_rows(self, limit: int) -> tuple[list[DeviceRow], int]:
        """In-flight devices first, then the most recently finished, then pending; and how many are hidden."""
        rows = list(self.rows.values())
        active = sorted((r for r in rows if r.active), key=lambda r: r.order)
        finished = sorted((r for r in rows if r.status is not None), key=lambda r: -r.order)
        pending = [r for r in rows if r.phase == "pending"]
        chosen = (active + finished + pending)[: max(limit, 1)]
        return chosen, len(rows) - len(chosen)

    def table(self, limit: int) -> Table:
        with self._lock:
            rows, hidden = self.visible_rows(limit)
            snapshot = [(r.name, r.phase, r.status, r.detail) for r in rows]
        table = Table(expand=True, caption=f"... and {hidden} more device(s)" if hidden else None)
        table.add_column("device", no_wrap=True)
        table.add_column("phase", no_wrap=True)
        table.add_column("status", no_wrap=True)
        table.add_column("detail", overflow="ellipsis", no_wrap=True, ratio=1)
        for name, phase, status, detail in snapshot:
            phase_style = _ACTIVE_STYLE.get(phase, "bold" if phase not in ("pending", "done") else "dim")
            shown = Text("-") if status is None else Text(status, style=_STATUS_STYLE.get(status, ""))
            table.add_row(Text(one_line(name)), Text(phase, style=phase_style), shown, Text(detail))
        return table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        limit = self._max_rows or max(3, (options.height or console.height) - _CHROME_LINES)
        with self._lock:
            progress = self._progress.get_renderable()
        yield Group(progress, self.table(limit))


@contextmanager
def fleet_reporters(
    console: Console,
    devices: Sequence[str],
    *,
    quiet: bool = False,
    plain: bool = False,
    show_plans: bool = True,
    show_diff: bool = True,
) -> Iterator[list[Reporter]]:
    """The reporters for a fleet run: live view on a terminal, plain lines otherwise (or when
    ``plain``, e.g. beside ``--output json``), none when quiet."""
    if quiet:
        yield []
    elif not plain and console.is_terminal and not console.is_dumb_terminal:
        with LiveReporter(console, devices, show_plans=show_plans, show_diff=show_diff) as live:
            yield [live]
    else:
        yield [ConsoleReporter(console, show_plans=show_plans, show_diff=show_diff)]
