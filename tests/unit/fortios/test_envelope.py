"""Envelope and system-status parsing: the shapes real FortiOS builds send, including the odd ones."""

from __future__ import annotations

import pytest

from fortiauto.fortios.envelope import SystemStatus, parse_envelope
from fortiauto.fortios.version import FortiOSVersion
from tests.unit.fortios.conftest import envelope, error_envelope


def test_write_envelope_fields() -> None:
    body = envelope(method="POST", mkey=12, revision_changed=False)
    env = parse_envelope(body, http_status=200, http_method="POST")
    assert env.ok
    assert (env.http_method, env.status, env.http_status) == ("POST", "success", 200)
    assert env.mkey == 12
    assert env.revision_changed is False
    assert env.old_revision == "1b3a7939fd4e4b5a8f0c1d2e3f4a5b6c"
    assert (env.version, env.build, env.serial) == ("v7.0.12", 1000, "FGT60FTK2099ABCD")
    assert (env.error, env.cli_error, env.results) == (None, None, None)
    assert env.raw == body


def test_monitor_success_without_http_status_takes_the_http_code() -> None:
    body = envelope(path="system", name="status", results={"hostname": "edge"})
    del body["http_status"]
    env = parse_envelope(body, http_status=200, http_method="GET")
    assert env.ok
    assert env.http_status == 200


def test_html_401_page_is_an_error_envelope() -> None:
    env = parse_envelope(None, http_status=401, http_method="GET")
    assert not env.ok
    assert (env.status, env.http_status, env.raw) == ("error", 401, {})


def test_http_error_code_is_never_overruled_by_the_body() -> None:
    env = parse_envelope(envelope(http_status=200), http_status=502, http_method="GET")
    assert not env.ok
    assert env.http_status == 502


def test_redirect_is_not_success() -> None:
    assert not parse_envelope(None, http_status=301, http_method="GET").ok


def test_cli_error_list_from_765_is_joined() -> None:
    body = error_envelope(
        500, error=-651, cli_error=["node_check_object fail!", "Command fail. Return code -651"]
    )
    env = parse_envelope(body, http_status=500, http_method="PUT")
    assert env.cli_error == "node_check_object fail!; Command fail. Return code -651"
    assert env.error == -651


def test_multi_vdom_array_uses_the_first_envelope() -> None:
    body = [envelope(vdom="root", results=[{"policyid": 1}]), envelope(vdom="dmz", results=[])]
    env = parse_envelope(body, http_status=200, http_method="GET")
    assert env.vdom == "root"
    assert env.results == [{"policyid": 1}]


def test_string_numbers_are_tolerated() -> None:
    env = parse_envelope(envelope(build="1575", error="-3"), http_status=200, http_method="GET")
    assert (env.build, env.error) == (1575, -3)


def test_system_status_from_a_74_answer() -> None:
    body = envelope(
        path="system",
        name="status",
        version="v7.4.3",
        build=2573,
        results={"model_name": "FortiGate", "model_number": "60F", "model": "FGT60F", "hostname": "edge-1"},
    )
    status = SystemStatus.from_envelope(parse_envelope(body, http_status=200, http_method="GET"))
    assert status == SystemStatus(
        version=FortiOSVersion(7, 4, 3),
        serial="FGT60FTK2099ABCD",
        hostname="edge-1",
        build=2573,
        model="FGT60F",
    )


def test_system_status_model_from_name_and_number() -> None:
    body = envelope(results={"model_name": "FortiGate", "model_number": "VM64", "hostname": "vm"})
    status = SystemStatus.from_envelope(parse_envelope(body, http_status=200, http_method="GET"))
    assert status.model == "FortiGate VM64"


def test_system_status_needs_a_version() -> None:
    body = envelope(results={})
    del body["version"]
    with pytest.raises(ValueError, match="no version"):
        SystemStatus.from_envelope(parse_envelope(body, http_status=200, http_method="GET"))
