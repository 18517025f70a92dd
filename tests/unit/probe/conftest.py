"""Fixtures for the probe tests: a test CA, the mail server's certificate, a spec factory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trustme

from fortiauto.site import ProbeSpec
from tests.unit.probe.servers import SERVER_NAME, Tls, issue


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def mx_tls(ca: trustme.CA) -> Tls:
    """The mail server's own certificate: the one a site pins."""
    return issue(ca, SERVER_NAME)


SpecFactory = Callable[..., ProbeSpec]


@pytest.fixture
def make_spec() -> SpecFactory:
    """ProbeSpec on 127.0.0.1 with one attempt and a 2 s step budget unless told otherwise."""

    def build(port: int, **overrides: Any) -> ProbeSpec:
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": port,
            "mode": "starttls",
            "server_name": SERVER_NAME,
            "timeout": 2.0,
            "retries": 1,
            "retry_delay": 0.0,
        }
        values.update(overrides)
        return ProbeSpec(**values)

    return build
