"""The state dir contract (site.yml, hosts.yml, lab.json, ca.pem, tokens, certs) and the foreground runner."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from ruamel.yaml import YAML

from fortiauto.site.loader import load_site
from fortiauto_lab.errors import LabInputError
from fortiauto_lab.server import run_lab, start_lab


def test_site_file_loads_with_the_site_models(lab):
    site = load_site(lab.site_path)
    assert [d.name for d in site.devices] == ["fgt-001", "fgt-002"]
    device = site.devices[0]
    assert device.url == lab.devices[0].url
    assert device.token is not None
    assert device.token.get_secret_value() == lab.devices[0].token
    server = device.mail_servers[0]
    assert (server.policy.vip, server.emailfilter_profile, server.ssl_profile) == (
        "vip-mx1",
        "mail-inbound",
        "protect-mx1",
    )
    assert server.probe.mode == "starttls"
    assert server.probe.server_name == "mx1.example.test"
    assert server.probe.transaction is not None
    assert server.fallback == ("certificate-inspection",)
    starttls = next(
        s for s in lab.info["devices"][0]["smtp"] if s["vip"] == "vip-mx1" and s["mode"] == "starttls"
    )
    assert server.probe.port == starttls["port"]
    assert site.rollout.concurrency == 10


def test_lab_json_and_inventory(lab, state_dir):
    info = json.loads((state_dir / "lab.json").read_text())
    assert info["ca"] == str(state_dir / "ca.pem")
    first = info["devices"][0]
    assert {"name", "url", "token", "username", "password", "vdoms", "smtp"} <= set(first)
    assert first["vdoms"] == ["root", "dmz"]
    assert {(s["vip"], s["vdom"], s["mode"]) for s in first["smtp"]} == {
        ("vip-mx1", "root", "starttls"),
        ("vip-mx1", "root", "smtps"),
        ("vip-mx2", "dmz", "starttls"),
        ("vip-mx2", "dmz", "smtps"),
    }
    hosts = YAML(typ="safe").load((state_dir / "hosts.yml").read_text())
    host = hosts["all"]["children"]["fortigates"]["hosts"]["fgt-002"]
    assert host["fortiauto_url"] == lab.devices[1].url
    assert Path(host["fortiauto_token_file"]).read_text().strip() == lab.devices[1].token
    assert (host["fortiauto_vdom"], host["ansible_connection"]) == ("root", "local")


def test_secrets_are_private_and_the_mail_cert_names_mx1(lab, state_dir):
    for path in [state_dir / "certs" / "mx1.key", state_dir / "lab.json", *state_dir.glob("tokens/*.token")]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    mail = x509.load_pem_x509_certificate((state_dir / "certs" / "mx1.pem").read_bytes())
    sans = mail.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["mx1.example.test"]
    ca = x509.load_pem_x509_certificate((state_dir / "ca.pem").read_bytes())
    assert mail.issuer == ca.subject


def test_every_device_binds_loopback_only(lab):
    assert all(d.url.startswith("https://127.0.0.1:") for d in lab.devices)
    assert len({d.port for d in lab.devices}) == len(lab.devices)
    assert all(s["host"] == "127.0.0.1" for d in lab.info["devices"] for s in d["smtp"])


@pytest.mark.parametrize(
    "kwargs", [{"devices": 0}, {"version": "6.2"}, {"faults": "fgt-001:no-such-fault"}, {"faults": "oops"}]
)
async def test_bad_input_is_refused_before_anything_starts(tmp_path, kwargs):
    target = tmp_path / "state"
    with pytest.raises(LabInputError):
        await start_lab(target, **kwargs)
    assert not target.exists()
    args = {"devices": 1, "version": "7.0", "faults": None} | kwargs
    with pytest.raises(LabInputError):
        run_lab(target, **args)
    assert not target.exists()


def test_run_lab_prints_ready_and_stops_on_sigterm(tmp_path):
    state = tmp_path / "state"
    code = (
        "import sys; from fortiauto_lab.server import run_lab; "
        f"sys.exit(run_lab({str(state)!r}, devices=2, version='7.2', faults=None))"
    )
    command = [sys.executable, "-c", code]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline() == f"lab ready: {state / 'site.yml'}\n"
            assert json.loads((state / "lab.json").read_text())["devices"][1]["name"] == "fgt-002"
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0
            assert process.stdout.read() == ""
        finally:
            process.kill()
