"""A state dir survives a restart: same CA, ports and tokens (or --base-port); lab.json records the faults."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from fortiauto_lab.errors import LabInputError
from fortiauto_lab.server import start_lab

FORTIAUTO = str(Path(sys.executable).with_name("fortiauto"))


def _info(state: Path) -> dict:
    return json.loads((state / "lab.json").read_text())


def _free_base() -> int:
    # Ten free ports in a row from an OS-picked one (the OS hands out ports near each other rarely;
    # retry until a run is free).
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base > 65000:
            continue
        taken = False
        for port in range(base, base + 10):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    taken = True
                    break
        if not taken:
            return base
    raise AssertionError("no run of free ports")


async def test_restart_keeps_ports_tokens_and_ca(tmp_path):
    state = tmp_path / "state"
    first = await start_lab(state, devices=2, faults="fgt-002:read-only-token")
    before = _info(state)
    ca = (state / "ca.pem").read_text()
    mail = (state / "certs" / "mx1.pem").read_text()
    await first.stop()
    second = await start_lab(state, devices=2)
    try:
        after = _info(state)
        for old, new in zip(before["devices"], after["devices"], strict=True):
            assert (new["url"], new["token"], new["password"]) == (old["url"], old["token"], old["password"])
            assert sorted(s["port"] for s in new["smtp"]) == sorted(s["port"] for s in old["smtp"])
        assert (state / "ca.pem").read_text() == ca
        assert (state / "certs" / "mx1.pem").read_text() == mail
        assert before["devices"][1]["faults"] == {"read-only-token": True}
        assert after["devices"][1]["faults"] == {}
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(state / "ca.pem"))) as http:
            answer = await http.get(
                f"{after['devices'][0]['url']}/api/v2/monitor/system/status",
                headers={"Authorization": f"Bearer {before['devices'][0]['token']}"},
            )
        assert answer.status_code == 200
    finally:
        await second.stop()


async def test_lab_json_follows_the_faults_in_force(tmp_path):
    state = tmp_path / "state"
    lab = await start_lab(state, faults="*:api-latency=5")
    try:
        assert _info(state)["faults"] == "*:api-latency=5"
        assert _info(state)["devices"][0]["faults"] == {"api-latency": 5}
        device = lab.devices[0]
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(state / "ca.pem"))) as http:
            answer = await http.post(
                f"{device.url}/__lab__/faults",
                content="ngfw-policy-based=dmz",
                headers={"Authorization": f"Bearer {device.token}"},
            )
        assert answer.status_code == 200
        assert _info(state)["devices"][0]["faults"] == {"ngfw-policy-based": "dmz"}
    finally:
        await lab.stop()


async def test_a_taken_port_is_a_lab_input_error(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        with pytest.raises(LabInputError, match=f"cannot listen on 127.0.0.1:{taken}"):
            await start_lab(tmp_path / "state", base_port=taken)


def test_base_port_through_the_cli(tmp_path):
    state = tmp_path / "state"
    base = _free_base()
    command = [FORTIAUTO, "lab", "up", "--devices", "2", "--state-dir", str(state), "--base-port", str(base)]
    command += ["--version", "7.6", "--model", "FortiGate-61F"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline() == f"lab ready: {state / 'site.yml'}\n"
            info = _info(state)
            assert info["devices"][0]["url"] == f"https://127.0.0.1:{base}"
            assert info["devices"][1]["url"] == f"https://127.0.0.1:{base + 5}"
            ports = sorted(s["port"] for d in info["devices"] for s in d["smtp"])
            assert ports == [p for p in range(base, base + 10) if p not in (base, base + 5)]
            assert (info["version"], info["model"]) == ("7.6.4", "FortiGate-61F")
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0
        finally:
            process.kill()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--version", "9.0"], "does not play FortiOS 9.0.0"),
        (["--model", "FortiGate-9999Z"], "unknown model"),
        (["--faults", "fgt-001:nope"], "unknown fault 'nope'"),
        (["--base-port", "80"], "--base-port"),
    ],
)
def test_bad_lab_arguments_exit_2_with_one_line(tmp_path, args, message):
    state = tmp_path / "state"
    done = subprocess.run(
        [FORTIAUTO, "lab", "up", "--state-dir", str(state), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not state.exists()
    shutil.rmtree(state, ignore_errors=True)


async def test_restart_keeps_a_chained_mail_certificate(tmp_path):
    state = tmp_path / "state"
    lab = await start_lab(state, mail_chain=True)
    await lab.stop()
    files = {
        name: (state / "certs" / name).read_text() for name in ("mx1.pem", "mx1-chain.pem", "mail-ca.pem")
    }
    lab = await start_lab(state, mail_chain=True)
    try:
        assert {name: (state / "certs" / name).read_text() for name in files} == files
        assert _info(state)["mail_chain"] is True
    finally:
        await lab.stop()
