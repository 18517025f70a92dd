"""The FortiOS client through a misbehaving proxy in front of a lab device: a mangled answer is never success.

Each fault of the stand-in turns a real lab answer into something FortiOS never sends. Reads
must raise ``MalformedAnswer`` (never an empty list, never ``None`` for "absent"); writes must
raise too, and the device itself is checked to show the write was really forwarded, so the
caller knows it must re-read. Lost and late answers to writes are ``ResponseLost``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from fortiauto import errors
from fortiauto.fortios import FortiOSClient
from fortiauto_lab.server import Lab
from tests.standins.conftest import upstream_get
from tests.standins.fortios_proxy import Fault, FortiOSProxy, Rule

ADDRESSES = "firewall/address"
SEEDED = "all"  # an address every lab device has

READ_FAULTS = [
    Fault.HTML_200,
    Fault.NOT_JSON,
    Fault.EMPTY_BODY,
    Fault.JSON_LIST,
    Fault.NO_STATUS,
    Fault.DROP_RESULTS,
    Fault.EMPTY_RESULTS,
    Fault.WRONG_MKEY,
    Fault.FAKE_404,
]
WRITE_FAULTS = [
    Fault.HTML_200,
    Fault.NOT_JSON,
    Fault.EMPTY_BODY,
    Fault.JSON_LIST,
    Fault.NO_STATUS,
    Fault.WRONG_MKEY,
]


def client(proxy: FortiOSProxy, lab: Lab, **kwargs: object) -> FortiOSClient:
    options: dict[str, object] = {"retries": 1, "backoff": 0, "name": "fgt-001"} | kwargs
    return FortiOSClient(proxy.url, token=lab.devices[0].token, verify=str(proxy.ca_path), **options)  # type: ignore[arg-type]


@pytest.fixture
async def api(proxy: FortiOSProxy, lab: Lab) -> AsyncIterator[FortiOSClient]:
    async with client(proxy, lab) as opened:
        yield opened


async def test_transparent_proxy_passes_real_answers(api: FortiOSClient, proxy: FortiOSProxy) -> None:
    found = await api.get_one(ADDRESSES, SEEDED)
    assert found is not None
    assert found["name"] == SEEDED
    assert await api.get_one(ADDRESSES, "no-such-address") is None  # the lab's real 404 envelope
    assert [e.fault for e in proxy.exchanges] == [Fault.PASS, Fault.PASS]


@pytest.mark.parametrize("fault", READ_FAULTS, ids=lambda f: f.value)
async def test_mangled_member_read_is_malformed_never_absent(
    api: FortiOSClient, proxy: FortiOSProxy, fault: Fault
) -> None:
    proxy.add(Rule(fault, method="GET", path=r"^/api/v2/cmdb/"))
    with pytest.raises(errors.MalformedAnswer) as caught:
        await api.get_one(ADDRESSES, SEEDED)
    assert caught.value.device == "fgt-001"
    assert caught.value.path == ADDRESSES
    assert "not a FortiOS answer" in str(caught.value)
    # A read is safe to ask again; both attempts were mangled.
    assert [e.fault for e in proxy.exchanges] == [fault, fault]


@pytest.mark.parametrize(
    "fault",
    [f for f in READ_FAULTS if f not in (Fault.EMPTY_RESULTS, Fault.WRONG_MKEY)],
    ids=lambda f: f.value,
)
async def test_mangled_table_and_monitor_reads_are_malformed(
    api: FortiOSClient, proxy: FortiOSProxy, fault: Fault
) -> None:
    proxy.add(Rule(fault, method="GET"))
    with pytest.raises(errors.MalformedAnswer):
        await api.get(ADDRESSES)
    with pytest.raises(errors.MalformedAnswer):
        await api.system_status()
    with pytest.raises(errors.MalformedAnswer):
        await api.monitor_get("system/status")


@pytest.mark.parametrize("fault", WRITE_FAULTS, ids=lambda f: f.value)
async def test_mangled_write_answer_is_malformed_and_the_write_did_land(
    api: FortiOSClient, proxy: FortiOSProxy, lab: Lab, fault: Fault
) -> None:
    proxy.add(Rule(fault, method="WRITE"))
    body = {"name": "standin-probe", "subnet": "192.0.2.7 255.255.255.255"}
    with pytest.raises(errors.MalformedAnswer) as caught:
        await api.create(ADDRESSES, body, mkey="standin-probe")
    assert "may or may not have taken effect" in str(caught.value)
    assert proxy.forwarded_writes == 1  # never resent
    # The device took it: this is why a mangled write answer must make the caller re-read.
    assert upstream_get(lab, f"/api/v2/cmdb/{ADDRESSES}/standin-probe").status_code == 200


async def test_every_answer_after_the_first_write_mangled(api: FortiOSClient, proxy: FortiOSProxy) -> None:
    proxy.add(Rule(Fault.HTML_200, after_writes=1))
    created = await api.create(ADDRESSES, {"name": "standin-one", "subnet": "192.0.2.8 255.255.255.255"})
    assert created.mkey == "standin-one"
    for call in (
        lambda: api.get_one(ADDRESSES, "standin-one"),
        lambda: api.get_one(ADDRESSES, "no-such-address"),
        lambda: api.update(ADDRESSES, "standin-one", {"comment": "x"}),
        lambda: api.delete(ADDRESSES, "standin-one"),
        lambda: api.log_get("memory/emailfilter/raw"),
    ):
        with pytest.raises(errors.MalformedAnswer):
            await call()


async def test_lost_write_answer_is_response_lost_and_not_resent(
    api: FortiOSClient, proxy: FortiOSProxy, lab: Lab
) -> None:
    proxy.add(Rule(Fault.LOSE_ANSWER, method="WRITE"))
    with pytest.raises(errors.ResponseLost) as caught:
        await api.create(ADDRESSES, {"name": "standin-lost", "subnet": "192.0.2.9 255.255.255.255"})
    assert caught.value.in_flight is False  # the connection dropped: the device is done with it
    assert proxy.forwarded_writes == 1
    assert upstream_get(lab, f"/api/v2/cmdb/{ADDRESSES}/standin-lost").status_code == 200


async def test_lost_read_answer_is_a_transport_error_after_the_retry(
    api: FortiOSClient, proxy: FortiOSProxy
) -> None:
    proxy.add(Rule(Fault.LOSE_ANSWER, method="GET"))
    with pytest.raises(errors.TransportError) as caught:
        await api.get_one(ADDRESSES, SEEDED)
    assert not isinstance(caught.value, errors.ResponseLost)
    assert len(proxy.exchanges) == 2


async def test_late_write_answer_is_response_lost_in_flight(proxy: FortiOSProxy, lab: Lab) -> None:
    proxy.add(Rule(Fault.DELAY, method="WRITE", delay=30))
    async with client(proxy, lab, timeout=0.5) as api:
        with pytest.raises(errors.ResponseLost) as caught:
            await api.update(ADDRESSES, SEEDED, {"comment": "late"})
    assert caught.value.in_flight is True  # timed out: the device may still carry it out
    assert proxy.forwarded_writes == 1


async def test_swallowed_write_looks_like_success_so_only_a_read_back_can_tell(
    api: FortiOSClient, proxy: FortiOSProxy, lab: Lab
) -> None:
    # A perfect success envelope for a write never applied: no client can see it in the
    # answer. The engine's read-back is what catches it; here the read-back shows the gap.
    proxy.add(Rule(Fault.SWALLOW_WRITE, method="WRITE"))
    answer = await api.update(ADDRESSES, SEEDED, {"comment": "swallowed"})
    assert answer.ok
    assert proxy.forwarded_writes == 0
    current = await api.get_one(ADDRESSES, SEEDED)
    assert current is not None
    assert current.get("comment") != "swallowed"
    assert upstream_get(lab, f"/api/v2/cmdb/{ADDRESSES}/{SEEDED}").json()["results"][0].get("comment") != (
        "swallowed"
    )


async def test_rules_skip_and_times_and_a_read_retry_that_recovers(
    api: FortiOSClient, proxy: FortiOSProxy
) -> None:
    proxy.add(Rule(Fault.NOT_JSON, method="GET", skip=1, times=1))
    assert await api.get_one(ADDRESSES, SEEDED) is not None  # skipped
    assert await api.get_one(ADDRESSES, SEEDED) is not None  # mangled once, the retry passes
    assert [e.fault for e in proxy.exchanges] == [Fault.PASS, Fault.NOT_JSON, Fault.PASS]
