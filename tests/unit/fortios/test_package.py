"""The package's public surface: a small ``__all__``, loaded lazily."""

from __future__ import annotations

import subprocess
import sys

import fortiauto.fortios as fortios
from fortiauto.fortios.client import USE_DEFAULT, FortiOSClient
from fortiauto.fortios.envelope import Envelope, SystemStatus


def test_exports_resolve() -> None:
    # Order is ruff's RUF022 (constants, then classes), enforced by `ruff check`.
    assert [getattr(fortios, name) for name in fortios.__all__] == [
        USE_DEFAULT,
        Envelope,
        FortiOSClient,
        SystemStatus,
    ]
    assert repr(USE_DEFAULT) == "USE_DEFAULT"


def test_pure_modules_do_not_import_httpx() -> None:
    code = "import sys, fortiauto.fortios.normalise, fortiauto.fortios.version; print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
