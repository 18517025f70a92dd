"""Fixtures for the vantage tests: a real sshd per test, a test CA and the mail server's certificate."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from fortiauto.site import ProbeSpec
from fortiauto.site.models import ProbeVia
from tests.integration.vantage.openssh import Sshd, running_sshd
from tests.unit.probe.servers import SERVER_NAME, Tls, issue


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def mx_tls(ca: trustme.CA) -> Tls:
    return issue(ca, SERVER_NAME)


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    with running_sshd(tmp_path / "sshd") as server:
        yield server


def via_ssh(server: Sshd, **overrides: Any) -> ProbeVia:
    values: dict[str, Any] = {"ssh": server.ssh, "key": server.user_key, "known_hosts": server.known_hosts}
    values.update(overrides)
    return ProbeVia(**values)


def spec(port: int, via: ProbeVia | None, **overrides: Any) -> ProbeSpec:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "mode": "starttls",
        "server_name": SERVER_NAME,
        "timeout": 5.0,
        "retries": 1,
        "retry_delay": 0.0,
        "ehlo": "gw.probe-site.net",
        "via": via,
    }
    values.update(overrides)
    return ProbeSpec(**values)


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    yield
    gc.collect()  # a transport a test leaked warns in that test, not in a later one
