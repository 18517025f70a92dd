"""``probe.via``, ``probe.verify_chain``, ``defaults.probe`` in the site file: paths, inheritance, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import asyncssh
import pytest

from fortiauto.errors import SiteInvalid
from fortiauto.site import load_site
from fortiauto.site.models import ProbeVia

CERTS = Path(__file__).parents[2] / "fixtures" / "certs"


def write_site(folder: Path, probe: str, defaults: str = "") -> Path:
    shutil.copy(CERTS / "mx1.pem", folder / "mx1.pem")
    shutil.copy(CERTS / "mx1.key", folder / "mx1.key")
    keys = folder / "keys"
    keys.mkdir(exist_ok=True)
    key = asyncssh.generate_private_key("ssh-ed25519")
    key.write_private_key(keys / "probe_ed25519")
    host = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()[:2]
    # The host as the tests name it: port 22 bare, another port in brackets (OpenSSH's format).
    (keys / "known_hosts").write_text(
        f"outside.example.net {host[0]} {host[1]}\n[outside.example.net]:2222 {host[0]} {host[1]}\n"
    )
    (keys / "mail-ca.pem").write_text((CERTS / "ca.pem").read_text())
    server = """
      - name: {name}
        policy: {{vip: vip-mx1}}
        certificate: {{cert: mx1.pem, key: mx1.key}}
        emailfilter_profile: mail-inbound
        ssl_profile: protect-mx1
        protocol_options: smtp-inbound
        probe: {{host: 127.0.0.1, server_name: mx1.example.test{probe}}}
"""
    text = f"""version: 1
defaults:
  token: abc
{defaults}
devices:
  - name: fgt-1
    url: https://127.0.0.1:8443
    verify_tls: false
    mail_servers:{server.format(name="mx1", probe=probe)}{server.format(name="mx2", probe="")}
"""
    path = folder / "site.yml"
    path.write_text(text)
    return path


def probes(path: Path) -> list:
    return [ms.probe for ms in load_site(path).devices[0].mail_servers]


def test_ssh_via_paths_are_relative_to_the_site_file(tmp_path):
    via = (
        ", via: {ssh: probe@outside.example.net:2222, key: keys/probe_ed25519, known_hosts: keys/known_hosts}"
    )
    first, second = probes(write_site(tmp_path, via))

    assert first.via is not None
    assert first.via.key == (tmp_path / "keys" / "probe_ed25519").resolve()
    assert first.via.known_hosts == (tmp_path / "keys" / "known_hosts").resolve()
    assert first.via.label == "ssh probe@outside.example.net:2222"
    assert second.via is None  # not set there, no default


def test_defaults_probe_is_inherited_and_a_server_own_key_wins(tmp_path):
    defaults = """  probe:
    via: {socks5: "10.9.8.7:1080"}
    ehlo: gw.probe-site.net
    verify_chain: keys/mail-ca.pem"""
    own = ", via: {ssh: probe@outside.example.net, key: keys/probe_ed25519, known_hosts: keys/known_hosts}"
    first, second = probes(write_site(tmp_path, own, defaults))

    assert first.via is not None
    assert first.via.label == "ssh probe@outside.example.net:22"  # its own via, whole
    assert second.via is not None
    assert second.via.label == "socks5 10.9.8.7:1080"
    assert first.ehlo == second.ehlo == "gw.probe-site.net"
    assert second.verify_chain == (tmp_path / "keys" / "mail-ca.pem").resolve()


@pytest.mark.parametrize(
    ("probe", "defaults", "key", "fragment"),
    [
        (", via: {ssh: probe@h, key: keys/nope, known_hosts: keys/known_hosts}", "",
         "devices[0].mail_servers[0].probe.via.key", "file 'keys/nope' not found"),
        (", via: {ssh: h:22, key: keys/probe_ed25519, known_hosts: keys/known_hosts}", "",
         "devices[0].mail_servers[0].probe.via.ssh", "name the SSH user"),
        (", via: {ssh: probe@h, key: keys/probe_ed25519}", "",
         "devices[0].mail_servers[0].probe.via.known_hosts", "needs known_hosts"),
        (", via: {socks5: 'h:1080', key: keys/probe_ed25519}", "",
         "devices[0].mail_servers[0].probe.via.key", "belongs to an ssh vantage"),
        (", via: {sock5: 'h:1080'}", "",
         "devices[0].mail_servers[0].probe.via.sock5", "did you mean 'socks5'"),
        ("", "  probe: {via: {socks5: 'h:99999'}}", "defaults.probe.via.socks5", "expected host:port"),
        ("", "  probe: {host: 10.0.0.1}", "defaults.probe.host", "set per mail server"),
        ("", "  probe: {verify_chain: keys/absent.pem}", "defaults.probe.verify_chain", "not found"),
        (", verify_chain: 3", "", "devices[0].mail_servers[0].probe.verify_chain", "expected true"),
        (", via: {ssh: probe@outside.example.net, key: keys/known_hosts, known_hosts: keys/known_hosts}", "",
         "devices[0].mail_servers[0].probe.via.key", "cannot open the SSH key"),
        (", via: {ssh: probe@gw.example.net, key: keys/probe_ed25519, known_hosts: keys/known_hosts}", "",
         "devices[0].mail_servers[0].probe.via.known_hosts", "no host key for gw.example.net in"),
        ("", "  probe: {via: {ssh: 'probe@gw.example.net:2200', key: keys/probe_ed25519, "
         "known_hosts: keys/known_hosts}}", "defaults.probe.via.known_hosts", "[gw.example.net]:2200"),
    ],
)  # fmt: skip
def test_bad_vantage_settings_name_file_line_and_key(tmp_path, probe, defaults, key, fragment):
    with pytest.raises(SiteInvalid) as caught:
        load_site(write_site(tmp_path, probe, defaults))

    problems = caught.value.problems
    assert any(p.key == key and fragment in p.message for p in problems), [str(p) for p in problems]
    assert all(p.line is not None for p in problems if p.key == key)


def test_verify_chain_needs_server_name(tmp_path):
    path = write_site(tmp_path, ", verify_chain: true")
    path.write_text(path.read_text().replace("server_name: mx1.example.test, verify_chain", "verify_chain"))
    with pytest.raises(SiteInvalid) as caught:
        load_site(path)
    assert any("verify_chain needs server_name" in p.message for p in caught.value.problems)


def test_an_encrypted_ssh_key_opens_at_load_with_its_passphrase_only(tmp_path):
    via = (
        ", via: {ssh: probe@outside.example.net, key: keys/locked, known_hosts: keys/known_hosts, "
        "passphrase: '${env:PROBE_KEY_PW}'}"
    )
    path = write_site(tmp_path, via)
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(
        tmp_path / "keys" / "locked", passphrase="s3cret"
    )

    site = load_site(path, environ={"PROBE_KEY_PW": "s3cret"})
    assert site.devices[0].mail_servers[0].probe.via.passphrase.get_secret_value() == "s3cret"
    with pytest.raises(SiteInvalid) as caught:
        load_site(path, environ={"PROBE_KEY_PW": "wrong-one"})
    problems = caught.value.problems
    assert [p.key for p in problems] == ["devices[0].mail_servers[0].probe.via.passphrase"]
    assert "wrong-one" not in str(problems[0])


@pytest.mark.parametrize(
    ("via", "label"),
    [
        ({"ssh": "probe@[2001:db8::7]:2222"}, "ssh probe@[2001:db8::7]:2222"),
        ({"ssh": "probe@gw.example.net"}, "ssh probe@gw.example.net:22"),
        ({"socks5": "[2001:db8::9]"}, "socks5 [2001:db8::9]:1080"),
    ],
)
def test_vantage_labels_name_user_host_and_port(tmp_path, via, label):
    files = {"key": tmp_path / "k", "known_hosts": tmp_path / "kh"} if "ssh" in via else {}
    assert ProbeVia(**via, **files).label == label
