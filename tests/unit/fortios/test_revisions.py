"""``concurrent_edit`` on write answers: FortiOS's ``old_revision`` against what this client last saw.

FortiOS reports one configuration revision for the whole device in every CMDB answer; a write
answer adds the ``old_revision`` it was applied on. Someone else's change between our read of
an object and our write to it shows as an ``old_revision`` our own writes cannot explain.
"""

from __future__ import annotations

import pytest
from pytest_httpx import HTTPXMock

from fortiauto.fortios import FortiOSClient
from tests.unit.fortios.conftest import BASE, TOKEN, envelope, error_envelope

R0, R1, R2, FOREIGN = ("a" * 32, "b" * 32, "c" * 32, "f" * 32)
PROFILE = {"name": "mail-inbound", "comment": "before"}


def read(revision: str, **fields: object) -> dict[str, object]:
    return envelope(path="emailfilter", name="profile", revision=revision, results=[PROFILE], **fields)


def wrote(method: str, old: str, new: str, mkey: object = "mail-inbound") -> dict[str, object]:
    return envelope(method=method, mkey=mkey, old_revision=old, revision=new, revision_changed=old != new)


@pytest.fixture
async def api() -> FortiOSClient:
    async with FortiOSClient(BASE, token=TOKEN, retries=0) as client:
        yield client


async def test_no_edit_between_read_and_write(api: FortiOSClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="GET", json=read(R0))
    httpx_mock.add_response(method="PUT", json=wrote("PUT", R0, R1))
    await api.get_one("emailfilter/profile", "mail-inbound")
    answer = await api.update("emailfilter/profile", "mail-inbound", {"comment": "after"})
    assert (answer.old_revision, answer.revision, answer.revision_changed) == (R0, R1, True)
    assert (answer.revision_seen, answer.concurrent_edit) == (R0, False)


async def test_someone_else_wrote_between_read_and_write(api: FortiOSClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="GET", json=read(R0))
    httpx_mock.add_response(method="PUT", json=wrote("PUT", FOREIGN, R1))
    await api.get_one("emailfilter/profile", "mail-inbound")
    answer = await api.update("emailfilter/profile", "mail-inbound", {"comment": "after"})
    assert (answer.revision_seen, answer.concurrent_edit) == (R0, True)


async def test_own_writes_in_between_are_not_someone_else(api: FortiOSClient, httpx_mock: HTTPXMock) -> None:
    # Read the policy table, write a profile and a certificate, then the policy: the policy
    # write's old_revision is where our own two writes left the device.
    httpx_mock.add_response(method="GET", json=envelope(revision=R0, results=[{"policyid": 12}]))
    httpx_mock.add_response(method="POST", json=wrote("POST", R0, R1, mkey="mail-inbound"))
    httpx_mock.add_response(method="PUT", json=wrote("PUT", R1, R2, mkey="mail-inbound"))
    httpx_mock.add_response(method="PUT", json=wrote("PUT", R2, "d" * 32, mkey=12))
    await api.get("firewall/policy")
    await api.create("emailfilter/profile", PROFILE)
    await api.update("emailfilter/profile", "mail-inbound", {"comment": "x"})
    answer = await api.update("firewall/policy", 12, {"emailfilter-profile": "mail-inbound"})
    assert (answer.revision_seen, answer.concurrent_edit) == (R2, False)


async def test_create_after_a_404_read(api: FortiOSClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="GET", status_code=404, json=error_envelope(404, mkey="mail-inbound", revision=R0)
    )
    httpx_mock.add_response(method="POST", json=wrote("POST", FOREIGN, R1))
    assert await api.get_one("emailfilter/profile", "mail-inbound") is None
    answer = await api.create("emailfilter/profile", PROFILE, mkey="mail-inbound")
    assert answer.concurrent_edit is True


async def test_cannot_tell_without_a_read_or_a_revision(api: FortiOSClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="PUT", json=wrote("PUT", R0, R1))
    httpx_mock.add_response(method="GET", json=read(R1))
    bare = envelope(method="PUT", mkey="mail-inbound")
    del bare["old_revision"], bare["revision"]  # a build that names no revisions
    httpx_mock.add_response(method="PUT", json=bare)
    first = await api.update("emailfilter/profile", "mail-inbound", {"comment": "a"})
    assert (first.revision_seen, first.concurrent_edit) == (None, None)
    await api.get_one("emailfilter/profile", "mail-inbound")
    second = await api.update("emailfilter/profile", "mail-inbound", {"comment": "b"})
    assert second.concurrent_edit is None


async def test_an_unrevisioned_write_in_between_makes_it_unknown(
    api: FortiOSClient, httpx_mock: HTTPXMock
) -> None:
    # A certificate import (monitor action) changes the configuration without saying how.
    httpx_mock.add_response(method="GET", json=read(R0))
    httpx_mock.add_response(method="POST", json=envelope(method="POST", path="vpn-certificate", results={}))
    httpx_mock.add_response(method="PUT", json=wrote("PUT", R1, R2))
    await api.get_one("emailfilter/profile", "mail-inbound")
    await api.monitor_post("vpn-certificate/local/import", {"type": "regular"})
    answer = await api.update("emailfilter/profile", "mail-inbound", {"comment": "x"})
    assert (answer.revision_seen, answer.concurrent_edit) == (R0, None)


async def test_the_latest_read_counts(api: FortiOSClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="GET", json=read(R0))
    httpx_mock.add_response(method="GET", json=read(FOREIGN))
    httpx_mock.add_response(method="DELETE", json=wrote("DELETE", FOREIGN, R1))
    await api.get_one("emailfilter/profile", "mail-inbound")
    await api.get_one("emailfilter/profile", "mail-inbound")  # the re-read right before the write
    answer = await api.delete("emailfilter/profile", "mail-inbound")
    assert (answer.revision_seen, answer.concurrent_edit) == (FOREIGN, False)
