"""What FortiManager reports, parsed: enum numbers and verbose names alike; shapes both ways."""

from __future__ import annotations

import pytest

from fortiauto.fortimanager import ManagedDevice, Task, like_fortios, to_fmg
from fortiauto.fortimanager.models import LockInfo
from fortiauto.fortimanager.rpc import MalformedAnswer, parse_answer, request_body


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"conn_status": 1, "conf_status": 1, "ha_mode": 0}, ("up", "insync", "standalone")),
        ({"conn_status": 2, "conf_status": 2, "ha_mode": 1}, ("down", "outofsync", "a-p")),
        ({"conn_status": "up", "conf_status": "insync", "ha_mode": "AA"}, ("up", "insync", "a-a")),
        ({"conn_status": "down", "conf_status": "out of sync"}, ("down", "outofsync", "standalone")),
        ({}, ("unknown", "unknown", "standalone")),
    ],
)
def test_device_status_both_spellings(raw: dict, expected: tuple) -> None:
    device = ManagedDevice.from_fmg({"name": "d", **raw})
    assert (device.conn_status, device.conf_status, device.ha_mode) == expected


@pytest.mark.parametrize(
    ("raw", "version"),
    [
        ({"os_ver": 7, "mr": 2, "patch": 10}, "7.2.10"),
        ({"os_ver": "7.0", "mr": 0, "patch": 15}, "7.0.15"),
        ({"os_ver": 6, "mr": 4, "patch": -1}, "6.4"),
        ({}, ""),
    ],
)
def test_device_version(raw: dict, version: str) -> None:
    assert ManagedDevice.from_fmg(raw).version == version


@pytest.mark.parametrize(
    ("raw", "ended", "succeeded"),
    [
        ({"state": 1, "percent": 40}, False, False),
        ({"state": "running", "percent": 99}, False, False),
        ({"state": 4, "percent": 100, "num_err": 0}, True, True),
        ({"state": "done", "percent": 100, "num_err": 1}, True, False),
        ({"state": 5, "percent": 60}, True, False),
        ({"state": "aborted", "percent": 10}, True, False),
    ],
)
def test_task_end_and_success(raw: dict, ended: bool, succeeded: bool) -> None:
    task = Task.from_fmg(raw, 5)
    assert (task.ended, task.succeeded, task.id) == (ended, succeeded, 5)


def test_lock_info() -> None:
    info = LockInfo.from_fmg({"lock_user": "jdoe", "lock_sid": "12", "lock_time": 1700, "adom_dirty": 1})
    assert (info.user, info.session, info.since, info.dirty) == ("jdoe", 12, 1700, True)


def test_request_body_and_answer() -> None:
    body = request_body("get", "/sys/status", request_id=3, session="s", options={"fields": ["a"]})
    assert body == {
        "id": 3,
        "method": "get",
        "params": [{"url": "/sys/status", "fields": ["a"]}],
        "session": "s",
        "verbose": 1,
    }
    answer = parse_answer(
        {"result": [{"status": {"code": -3, "message": "gone"}, "url": "/x"}], "session": "t"}
    )
    assert (answer.code, answer.message, answer.url, answer.data, answer.session, answer.ok) == (
        -3,
        "gone",
        "/x",
        None,
        "t",
        False,
    )
    for bad in ([], {"result": []}, {"result": [{"status": {"code": "0"}}]}, {"result": [{}]}):
        with pytest.raises(MalformedAnswer):
            parse_answer(bad)


def test_shapes_round_trip_a_policy() -> None:
    fortios = {
        "name": "inbound-smtp",
        "dstaddr": [{"name": "vip-mx1", "q_origin_key": "vip-mx1"}],
        "ssl-ssh-profile": "protect-mx1",
        "inspection-mode": "proxy",
        "smtp": {"ports": [25], "options": "splice"},
    }
    fmg = to_fmg(fortios)
    assert fmg == {
        "name": "inbound-smtp",
        "dstaddr": ["vip-mx1"],
        "ssl-ssh-profile": "protect-mx1",
        "inspection-mode": "proxy",
        "smtp": {"ports": [25], "options": "splice"},
    }
    read_back = {**fmg, "ssl-ssh-profile": ["protect-mx1"], "uuid": "u"}
    assert like_fortios(read_back, fortios) == {
        "name": "inbound-smtp",
        "dstaddr": [{"name": "vip-mx1"}],
        "ssl-ssh-profile": "protect-mx1",
        "inspection-mode": "proxy",
        "smtp": {"ports": [25], "options": "splice"},
        "uuid": "u",
    }


def test_like_fortios_server_cert_as_list_of_names_and_as_string() -> None:
    assert like_fortios({"server-cert": ["fa-mx1"]}, {"server-cert": [{"name": "x"}]}) == {
        "server-cert": [{"name": "fa-mx1"}]
    }
    assert like_fortios({"server-cert": ["fa-mx1"]}, {"server-cert": "x"}) == {"server-cert": "fa-mx1"}
    assert like_fortios({"server-cert": "fa-mx1"}, {"server-cert": [{"name": "x"}]}) == {
        "server-cert": [{"name": "fa-mx1"}]
    }
