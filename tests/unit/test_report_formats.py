"""Every report format against hostile names and the failures a change board must see.

Markdown is read back with a real CommonMark + GFM parser (markdown-it-py), JUnit with an XML
parser, HTML with an HTML parser, console output as the lines a terminal or log shows: a name
holding newlines, ``|``, ``#``, rich markup or HTML must come out as text in each, and a
rollback's or fallback's failure (class, step timings, transcript, outage window) must be there.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from rich.console import Console

from fortiauto.report import write_reports
from fortiauto.report.console import ConsoleReporter, make_console, render_plan, render_summary
from fortiauto.report.live import LiveReporter
from fortiauto.report.safe import md_cell, md_text, one_line, visible, xml_text
from fortiauto.report.story import failure, policy_label, probe_summary
from fortiauto.report.to_html import CONTENT_SECURITY_POLICY, run_to_html
from fortiauto.report.to_junit import run_to_junit
from fortiauto.report.to_markdown import group_plans, run_to_markdown
from tests.unit import reportkit as kit

# -- helpers ---------------------------------------------------------------------------------


def _markdown_tokens(text: str) -> list:
    return MarkdownIt("commonmark").enable("table").parse(text)


def _headings(tokens: list) -> list[str]:
    return [_text(tokens[i + 1]) for i, t in enumerate(tokens) if t.type == "heading_open"]


def _tables(tokens: list) -> list[list[list[str]]]:
    """Each table as rows of cell texts, as a GFM renderer sees them."""
    tables: list[list[list[str]]] = []
    for index, token in enumerate(tokens):
        if token.type == "table_open":
            tables.append([])
        elif token.type == "tr_open":
            tables[-1].append([])
        elif token.type in ("th_open", "td_open"):
            tables[-1][-1].append(_text(tokens[index + 1]))
    return tables


def _text(inline) -> str:
    """What a reader sees of an inline token: its text, escapes resolved."""
    return "".join(child.content for child in inline.children or [] if child.type in ("text", "code_inline"))


def _inline_types(tokens: list) -> set[str]:
    return {child.type for t in tokens if t.type == "inline" for child in t.children or []}


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.sections: list[str | None] = []
        self.csp: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)
        values = dict(attrs)
        if tag == "section":
            self.sections.append(values.get("data-device"))
        if tag == "meta" and values.get("http-equiv") == "Content-Security-Policy":
            self.csp = values.get("content")


def _hostile_run():
    return kit.run_of(
        kit.changed(kit.HOSTILE, reason=kit.HOSTILE),
        kit.rolled_back(
            "fgt-2", reason=f"internal error (POST x) [http 500, error -1] {kit.HOSTILE}", banner=kit.HOSTILE
        ),
        exit_code=3,
        notes=(kit.HOSTILE,),
    )


# -- escaping helpers --------------------------------------------------------------------------


def test_one_line_shows_controls_and_bidi_overrides_as_escapes():
    assert one_line("a\nb\rc\td\x1b\u202e") == "a\\nb\\rc\\td\\u001b\\u202e"
    assert one_line("plain name-1.example") == "plain name-1.example"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("# heading", "\\# heading"),
        ("1. item", "1\\. item"),
        ("- item", "\\- item"),
        ("a | b", "a \\| b"),
        ("[link](http://x)", "\\[link\\](http://x)"),
        ("<b>x</b>", "\\<b\\>x\\</b\\>"),
        ("rolled_back", "rolled_back"),
        ("_emphasis_", "\\_emphasis\\_"),
        ("FortiOS 7.0.15", "FortiOS 7.0.15"),
    ],
)
def test_markdown_text_escapes_what_markdown_would_read_as_structure(raw, shown):
    assert md_text(raw) == shown


def test_markdown_cell_keeps_a_row_one_row():
    assert md_cell("a|b\n|c|") == "a\\|b\\\\n\\|c\\|"  # the shown "\\n" has its backslash escaped
    assert md_cell("") == " "


def test_xml_text_drops_nothing_and_leaves_no_invalid_character():
    text = xml_text("a\x00b\x1bc\x0bd\ttab")
    assert text == "a\\u0000b\\u001bc\\u000bd\ttab"
    ET.fromstring(f"<a>{text}</a>")


# -- console ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Consoles here are not terminals; an inherited COLUMNS (a parallel runner's) must not narrow them."""
    monkeypatch.delenv("COLUMNS", raising=False)


def _console() -> tuple[Console, io.StringIO]:
    """The CLI's own console construction, writing into a buffer (not a terminal)."""
    buffer = io.StringIO()
    return make_console(file=buffer), buffer


def test_console_lines_show_markup_and_newlines_literally():
    console, buffer = _console()
    run = _hostile_run()
    reporter = ConsoleReporter(console)
    reporter.device_started(kit.HOSTILE)
    for device in run.devices:
        reporter.device_finished(device)
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 3  # one line per event, whatever the names hold
    assert "[http 500, error -1]" in lines[2]
    assert "[bold]bold[/bold]" in lines[0]
    assert not any(line.startswith(("## forged", "| forged")) for line in lines)


def test_live_view_lines_and_rows_show_markup_literally():
    console, buffer = _console()
    run = _hostile_run()
    with LiveReporter(console, [d.name for d in run.devices], auto_refresh=False) as live:
        for device in run.devices:
            live.device_finished(device)
        console.print(live.table(10))
    text = buffer.getvalue()
    assert "[http 500, error -1]" in text
    assert "[bold]bold[/bold]" in text
    assert not any(line.startswith("## forged") for line in text.splitlines())


def test_summary_table_has_one_row_per_device_and_literal_markup():
    console, buffer = _console()
    console.print(render_summary(_hostile_run()))
    text = buffer.getvalue()
    assert "[http 500, error -1]" in text
    assert "[bold]bold[/bold]" in text
    assert not any(line.startswith("## forged") for line in text.splitlines())


def test_summary_keeps_the_failure_behind_a_rollback_and_a_fallback():
    console, buffer = _console()
    console.print(render_summary(kit.run_of(kit.fallback("fgt-4"), kit.rolled_back("fgt-5"), exit_code=3)))
    text = buffer.getvalue()
    assert "pass after F4 banner-timeout (full)" in text  # the fallback's row
    assert "fgt-4: F4 banner-timeout at the after mx1 probe; outage window: mail broken for 41200 ms" in text
    assert "fgt-5: F4 banner-timeout at the after mx1 probe; outage window: mail broken for 38000 ms" in text
    assert "  banner    10000.0 ms  FAIL  no 220 in 10 s" in text  # the failed step and its timing
    assert "  (connected, no banner)" in text  # the transcript
    assert "38000 ms" in next(line for line in text.splitlines() if line.startswith("│ fgt-5"))


def test_plan_text_holds_a_hostile_value_on_its_line():
    plan = kit.plan_for(kit.HOSTILE, comment="first\n  + forged: key")
    lines = render_plan(plan).splitlines()
    assert lines[0].startswith("evil\\n## forged heading")
    assert not any(line.strip().startswith("+ forged") for line in lines)


def test_a_console_without_a_terminal_does_not_wrap_reasons(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    buffer = io.StringIO()
    console = make_console(file=buffer)
    assert not console.is_terminal
    reason = "baseline probe failed, mail already broken (mx1: F2 refused); " * 4
    console.print(render_summary(kit.run_of(kit.rolled_back("fgt-1", reason=reason))))
    row = next(line for line in buffer.getvalue().splitlines() if "fgt-1" in line)
    assert reason.strip() in row  # the whole reason on the device's one row
    console.print("error: [http 500, error -1] [bold]x[/bold]")  # cli's f-strings are never markup
    assert buffer.getvalue().splitlines()[-1] == "error: [http 500, error -1] [bold]x[/bold]"


@pytest.mark.parametrize("stderr", [False, True])
def test_the_console_never_turns_emoji_codes_into_emoji(stderr):
    # A fingerprint holding ":CD:" printed as "93\U0001f4bfC0" (rich's emoji codes): CI caught it.
    fingerprint = "B2:79:E0:03:05:FC:A9:ED:93:CD:C0:65:BC:06:8D:9E:3D:4D:1F:A8:BB:D1:0C:62:BF:67"
    buffer = io.StringIO()
    console = make_console(stderr=stderr, file=buffer)
    console.print(f"  sha256 fingerprint: {fingerprint}")
    console.print("comment :smile: :thumbs_up: :cd:", markup=False)
    assert buffer.getvalue().splitlines() == [
        f"  sha256 fingerprint: {fingerprint}",
        "comment :smile: :thumbs_up: :cd:",
    ]


def test_a_console_without_a_terminal_keeps_an_explicit_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    assert make_console(file=io.StringIO()).width == 100


# -- Markdown --------------------------------------------------------------------------------


def test_markdown_hostile_names_forge_no_heading_row_or_markup():
    text = run_to_markdown(_hostile_run(), operator="ops@example")
    tokens = _markdown_tokens(text)
    headings = _headings(tokens)
    assert not any(h.startswith("forged") for h in headings)
    assert sum(1 for h in headings if h.startswith("Device ")) == 2
    summary = next(rows for rows in _tables(tokens) if rows[0][0] == "Device")
    assert [len(row) for row in summary] == [10, 10, 10]  # header + one row per device, all cells
    assert summary[1][0] == one_line(kit.HOSTILE)  # the name, shown whole as text
    assert summary[2][-1].startswith("internal error (POST x) [http 500, error -1]")
    assert {"html_inline", "link_open", "image", "strong_open"} & _inline_types(tokens) <= {"strong_open"}
    assert not [t for t in tokens if t.type == "html_block"]


def test_markdown_groups_identical_plans():
    one = run_to_markdown(kit.run_of(kit.changed("fgt-001")), operator="ops@example")
    three = run_to_markdown(
        kit.run_of(kit.changed("fgt-001"), kit.changed("fgt-002"), kit.changed("fgt-003")),
        operator="ops@example",
    )
    assert three.count("### Plan A: FortiOS CLI equivalent") == 1
    assert "For fgt-001, fgt-002, fgt-003" in three
    assert len(three) < 1.5 * len(one)
    groups, labels = group_plans(kit.fleet().devices)
    assert next(g.devices for g in groups) == ("fgt-001", "fgt-002", "fgt-003")
    assert labels["fgt-004"] != labels["fgt-001"]  # a fallback rung is another plan


def test_markdown_shows_the_attempted_plan_and_the_failure_of_a_rolled_back_device():
    text = run_to_markdown(kit.run_of(kit.rolled_back("fgt-9"), exit_code=3), operator="ops@example")
    assert "Attempted plan: Plan A" in text
    assert "update firewall/policy/1" in text
    assert "### Failure that caused the rollback" in text
    assert "F4 banner-timeout at the after mx1 probe" in text
    assert "banner" in text
    assert "10000.0 ms  FAIL" in text
    assert "(connected, no banner)" in text  # the transcript
    assert "outage window: mail broken for 38000 ms, from 120 ms" in text


def test_markdown_keeps_the_failure_behind_a_fallback():
    text = run_to_markdown(kit.run_of(kit.fallback("fgt-4")), operator="ops@example")
    assert "### Failure that caused the fallback" in text
    assert "pass after F4 banner-timeout (full)" in text
    assert "mail broken for 41200 ms" in text


def test_markdown_backout_names_the_journal_directory(tmp_path: Path):
    journal = tmp_path / "my journals"
    text = run_to_markdown(kit.run_of(kit.changed("fgt-1")), operator="o", journal_dir=str(journal))
    assert f"fortiauto rollback --run {kit.RUN_ID} --journal-dir '{journal}'" in text


def test_markdown_shows_the_effect_evidence_the_vantage_and_the_warnings():
    via = replace(kit.passed(), vantage="ssh probe@203.0.113.5:22")
    device = replace(kit.changed("fgt-1"), probes=(kit.Probe("after", "mx1", via),))
    text = run_to_markdown(kit.run_of(device), operator="o")
    assert "(time 2026-11-24 22:15:04, policy 1, action log-only, subject fortiauto probe" in text
    assert "| starttls via ssh probe@203.0.113.5:22 |" in text
    broken = run_to_markdown(kit.run_of(kit.rolled_back("fgt-2")), operator="o")
    assert "### Warnings" in broken
    assert "- after mx1 probe: the banner arrived after the timeout on 2 of 3 attempts" in broken


def test_a_device_skipped_for_a_broken_baseline_shows_that_probe():
    skipped = kit.Result(
        name="fgt-7",
        status="skipped",
        reason="baseline probe failed, mail already broken (mx1: F4 banner-timeout)",
        baseline=kit.banner_timeout(),
        probes=(kit.Probe("baseline", "mx1", kit.banner_timeout()),),
    )
    run = kit.run_of(skipped, exit_code=5)
    markdown = run_to_markdown(run, operator="o")
    assert "### Failure that caused the skip" in markdown
    assert "F4 banner-timeout at the baseline mx1 probe" in markdown
    assert "Failure that caused the skip" in run_to_html(run)
    console, buffer = _console()
    console.print(render_summary(run))
    assert "F4 banner-timeout" in buffer.getvalue()  # in the row; no rollback block for a skip


def test_markdown_of_a_rollback_run_names_what_was_undone():
    restored = replace(kit.rolled_back("fgt-1", reason="restored from the journal"), probes=(), mttr_ms=None)
    run = replace(kit.run_of(restored), command="rollback")
    text = run_to_markdown(run, operator="o")
    assert "## Plan A (undone): 1 device(s)" in text
    assert "What this rollback undid on fgt-1." in text
    assert "Undone: Plan A" in text
    assert "<h3>Undone changes</h3>" in run_to_html(run)


def test_policy_is_named_by_name_and_id():
    assert policy_label(kit.changed("fgt-1")) == '"inbound-smtp" (id 1)'
    assert policy_label(kit.rolled_back("fgt-1")) == "id 1"  # only the id is known


# -- JUnit -----------------------------------------------------------------------------------


def test_junit_is_valid_xml_with_hostile_names_and_keeps_the_failure():
    run = _hostile_run()
    root = ET.fromstring(run_to_junit(run).encode())
    cases = root.findall("testcase")
    assert [c.get("name") for c in cases] == [xml_text(d.name) for d in run.devices]
    failed = cases[1].find("failure")
    assert failed is not None
    text = failed.text or ""
    assert "[http 500, error -1]" in failed.get("message", "")
    assert "failed probe: after mx1" in text
    assert "10000.0 ms  FAIL  no 220 in 10 s" in text
    assert "outage window: mail broken for 38000 ms" in text


def test_junit_keeps_the_failure_behind_a_fallback():
    root = ET.fromstring(run_to_junit(kit.run_of(kit.fallback("fgt-4"))).encode())
    case = root.find("testcase")
    assert case is not None
    assert case.find("failure") is None
    out = case.findtext("system-out") or ""
    assert "fell back after this failure" in out
    assert "F4 banner-timeout" in out
    assert "mail broken for 41200 ms" in out


# -- HTML (structure; the browser test renders it) --------------------------------------------


def test_html_escapes_everything_and_loads_nothing():
    page = run_to_html(_hostile_run())
    parser = _Elements()
    parser.feed(page)
    assert "script" not in parser.tags
    assert "img" not in parser.tags
    assert parser.csp == CONTENT_SECURITY_POLICY
    assert parser.sections == [visible(kit.HOSTILE), "fgt-2"]
    urls = [v for k, v in parser.attrs if k in ("src", "href", "action", "srcset") and v]
    assert all(v.startswith("#") for v in urls), urls
    assert "@import" not in page
    assert "\u202e" not in page  # a bidi override shows as an escape, it does not reverse the text
    assert "\\u202e" in page
    assert "\x1b" not in page
    assert "url(" not in page


def test_html_shows_timeline_outage_failure_and_evidence():
    page = run_to_html(kit.fleet(), journal_dir="/var/lib/fortiauto/journal")
    for name in ("fgt-001", "fgt-002", "fgt-003", "fgt-004", "fgt-005"):
        assert f'data-device="{name}"' in page
    assert "Failure that caused the rollback" in page
    assert "Failure that caused the fallback" in page
    assert "Outage window: mail was broken for 38000 ms" in page
    assert "Attempted plan (rolled back)" in page
    assert "The full fix was tried first and rolled back after the failure below" in page
    assert "log-only" in page  # the log entry that proved the effect
    assert "--journal-dir /var/lib/fortiauto/journal" in page
    assert "the banner arrived after the timeout" in page  # a probe warning
    via = replace(kit.passed(), vantage="socks5 198.51.100.7:1080")
    device = replace(kit.changed("fgt-1"), probes=(kit.Probe("after", "mx1", via),))
    assert "(starttls via socks5 198.51.100.7:1080, 1 attempt(s))" in run_to_html(kit.run_of(device))


# -- the story the formats share -------------------------------------------------------------


def test_failure_is_the_after_probe_not_the_last_one():
    chosen = failure(kit.fallback("fgt-4"))
    assert chosen is not None
    assert chosen.stage == "after"
    assert chosen.rung is None
    assert probe_summary(kit.rolled_back("x")) == "F4 banner-timeout"
    assert probe_summary(kit.changed("x")) == "pass"


def test_report_files_include_html_and_are_private(tmp_path: Path):
    paths = write_reports(kit.fleet(), tmp_path / "reports", journal_dir=tmp_path / "journal")
    assert sorted(p.suffix for p in paths) == [".html", ".json", ".md", ".xml"]
    for path in paths:
        assert oct(path.stat().st_mode & 0o777) == "0o600"
    markdown = next(p for p in paths if p.suffix == ".md").read_text()
    assert f"--journal-dir {tmp_path / 'journal'}" in markdown


def test_every_format_names_the_revision_saved_before_the_first_write():
    device = replace(kit.rolled_back("fgt-9"), config_revision="42")
    run = kit.run_of(device, exit_code=3)
    expected = "configuration revision 42 was saved on the unit before the first write"
    assert f"Safety net: {expected}" in _text_of_markdown(run_to_markdown(run, operator="ops@example"))
    page = run_to_html(run)
    assert f'<p class="revision">Safety net: {expected}' in page
    console, buffer = _console()
    ConsoleReporter(console).device_finished(device)
    assert f"  = {expected}" in buffer.getvalue()
    # A device that wrote nothing saved nothing, and says nothing about it.
    quiet = kit.changed("fgt-1")
    assert "revision" not in run_to_markdown(kit.run_of(quiet), operator="ops@example").lower()
    console, buffer = _console()
    ConsoleReporter(console).device_finished(quiet)
    assert "revision" not in buffer.getvalue()


def _text_of_markdown(text: str) -> str:
    """The paragraphs a Markdown reader sees, escapes resolved."""
    return "\n".join(_text(t) for t in _markdown_tokens(text) if t.type == "inline")
