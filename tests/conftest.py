"""Shared test switches: golden files (``--update-golden`` rewrites them) and the output scrubber.

Golden files live in ``tests/golden/``; before comparing, ``scrub`` replaces what differs run
to run (run ids, timestamps, loopback ports, temp paths, durations) with stable markers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"

_SCRUBBERS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}"), "<RUN_ID>"),
    # The probe's subject token: run id, device, mail server and 6 random hex digits.
    (re.compile(r"(<RUN_ID>-[\w.:-]+?-)[0-9a-f]{6}\b"), r"\1<HEX6>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(\+00:00|Z)?"), "<TIME>"),
    (re.compile(r"(127\.0\.0\.1|localhost):\d+"), r"\1:<PORT>"),
    (re.compile(r"/tmp/[^\s\"'<>)]+"), "<TMP>"),
    (re.compile(r'time="[0-9.]+"'), 'time="<SECONDS>"'),
    (re.compile(r"\b\d+(\.\d+)? ?ms\b"), "<MS>"),
    (re.compile(r'"ms": [0-9.]+'), '"ms": <MS>'),
    (re.compile(r'"mttr_ms": [0-9.]+'), '"mttr_ms": <MS>'),
    (re.compile(r"Operator \| [^|]+\|"), "Operator | <OPERATOR> |"),
    # Certificates generated per lab start: their derived names and fingerprints differ each run.
    (re.compile(r"\bfa-([\w.]+(?:-[\w.]+)*?)-[0-9a-f]{8}\b"), r"fa-\1-<SHA8>"),
    (re.compile(r"sha256 [0-9a-f]{16}"), "sha256 <SHA>"),
]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden", action="store_true", help="rewrite tests/golden/ from the current output"
    )


def scrub(text: str) -> str:
    for pattern, replacement in _SCRUBBERS:
        text = pattern.sub(replacement, text)
    return text


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """``golden(name, text)``: compare scrubbed text with tests/golden/<name>, or rewrite it."""
    update = request.config.getoption("--update-golden")

    def check(name: str, text: str) -> None:
        path = GOLDEN / name
        clean = scrub(text)
        if update or not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(clean)
            if not update:
                pytest.fail(f"golden file {name} was missing and has been written; review and commit it")
        assert clean == path.read_text(), f"{name} differs from the golden file (--update-golden to accept)"

    return check


@pytest.fixture(autouse=True)
def _machine_lock_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own machine-wide device-lock directory (subprocesses inherit it)."""
    monkeypatch.setenv("FORTIAUTO_LOCK_DIR", str(tmp_path_factory.mktemp("locks")))
