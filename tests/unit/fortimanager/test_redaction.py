"""Secrets never leave the FortiManager client: not in exceptions, reprs, or DEBUG logs.

Canary values stand in for the admin password, the API key, the session id FortiManager hands
out, and a certificate key and passphrase; FortiManager is even made to echo them back in its
status message, as an error text can.
"""

from __future__ import annotations

import logging

import httpx
import pytest

from fortiauto import errors
from fortiauto.fortimanager import FortiManagerClient
from tests.unit.fortimanager.conftest import BASE, PASSWORD, SESSION, TOKEN, USERNAME, FakeFMG, fail, ok

KEY = "canary-key-LS0tLS1CRUdJTiBQUklWQVRF"
PASSPHRASE = "canary-passphrase-93kd"
CANARIES = (PASSWORD, TOKEN, SESSION, KEY, PASSPHRASE)


def texts_of(exc: BaseException) -> list[str]:
    out: list[str] = []
    current: BaseException | None = exc
    while current is not None:
        out += [str(current), repr(current), *map(repr, current.args)]
        out += [repr(v) for v in vars(current).values()]
        current = current.__cause__ or current.__context__
    return out


def assert_clean(*texts: str) -> None:
    for text in texts:
        for canary in CANARIES:
            assert canary not in text, f"secret leaked into: {text[:200]}"


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # fortiauto, httpx and httpcore alike
    return caplog


def echo(url: str, *secrets: str) -> dict:
    """An error whose message repeats what the client sent (only a client's own secrets can be known)."""
    return fail(url, -10, "invalid: " + " ".join(secrets))


async def test_session_client_never_shows_its_secrets(
    fmg: FakeFMG, debug_logs: pytest.LogCaptureFixture
) -> None:
    cert_url = "/pm/config/device/fgt-001/vdom/root/vpn/certificate/local"
    fmg.reply("add", cert_url, echo(cert_url, PASSWORD, SESSION, KEY, PASSPHRASE))
    caught: list[BaseException] = []
    client = FortiManagerClient(
        BASE, username=USERNAME, password=PASSWORD, transport=httpx.MockTransport(fmg)
    )
    async with client:
        with pytest.raises(errors.FortiManagerInvalidData) as info:
            await client.add_device_certificate(
                "fgt-001", "root", name="fa-mx1", cert_pem="CERT", key_pem=KEY, passphrase=PASSPHRASE
            )
        caught.append(info.value)
        reprs = [repr(client)]
    assert "invalid: *** *** *** ***" in str(caught[0])
    for exc in caught:
        assert_clean(*texts_of(exc))
    assert_clean(*reprs, debug_logs.text)
    assert f"fortimanager: add {cert_url} -> -10" in debug_logs.text
    assert "fortimanager: exec /sys/login/user -> 0" in debug_logs.text


async def test_failed_login_never_shows_the_password(
    fmg: FakeFMG, debug_logs: pytest.LogCaptureFixture
) -> None:
    fmg.reply("exec", "/sys/login/user", fail("/sys/login/user", -22, f"Login fail for {PASSWORD}"))
    client = FortiManagerClient(
        BASE, username=USERNAME, password=PASSWORD, transport=httpx.MockTransport(fmg)
    )
    with pytest.raises(errors.FortiManagerAuthError) as info:
        async with client:
            pass
    assert_clean(*texts_of(info.value), debug_logs.text)


async def test_token_client_transport_failures_are_clean(debug_logs: pytest.LogCaptureFixture) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}")

    client = FortiManagerClient(BASE, token=TOKEN, transport=httpx.MockTransport(broken))
    async with client:
        with pytest.raises(errors.FortiManagerTransportError) as info:
            await client.get("/sys/status")
    assert_clean(*texts_of(info.value), repr(client), debug_logs.text)


async def test_workspace_locked_names_the_holder_but_no_secret(fmg: FakeFMG) -> None:
    url = "/dvmdb/adom/root/workspace/lock"
    fmg.reply("exec", url, echo(url, TOKEN))
    fmg.reply("get", "/dvmdb/adom/root/workspace/lockinfo", ok("x", [{"lock_user": "jdoe"}]))
    async with FortiManagerClient(BASE, token=TOKEN, transport=httpx.MockTransport(fmg)) as client:
        with pytest.raises(errors.WorkspaceLocked) as info:
            await client.lock()
    assert "jdoe" in str(info.value)
    assert_clean(*texts_of(info.value))
