"""The site loader: the bad-site corpus, the shipped examples, references, defaults, warnings, secrets.

Each file in ``site_cases/`` starts with ``# expect: LINE | KEY | MESSAGE FRAGMENT`` ("-" for no line or
no key): the problem ``load_site`` must report for it. A new way to get the site file wrong is a new
file there, not new code.
"""

from __future__ import annotations

import shutil
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fortiauto.certs import pem_fingerprint
from fortiauto.errors import InputError, SiteInvalid
from fortiauto.site import Site
from fortiauto.site.loader import load_site, load_site_data, redacted_dump
from tests.fixtures.make_certs import PASSPHRASE, write_leaf

HERE = Path(__file__).resolve().parent
CASES = sorted((HERE / "site_cases").glob("*.yml"))
ROOT = HERE.parents[1]
EXAMPLES = ROOT / "inventory" / "examples"
CERTS = ROOT / "tests" / "fixtures" / "certs"
ENV = {"FGT_TOKEN": "tok-abc", "FGT_PASSWORD": "pw-abc", "FGT_USER": "admin", "MX_KEY_PASSPHRASE": PASSPHRASE}
CANARIES = ("CANARY-TOKEN-123", "CANARY-PASSWORD-456", "CANARY-PASSPHRASE-789", "CANARY-URLPASS-000")


def expectation(case: Path) -> tuple[int | None, str, str]:
    first = case.read_text().splitlines()[0]
    assert first.startswith("# expect: "), case
    line, key, fragment = (part.strip() for part in first.removeprefix("# expect: ").split(" | ", 2))
    return (None if line == "-" else int(line)), ("" if key == "-" else key), fragment


def site_text(**overrides: str) -> str:
    """The smallest valid site (a token, one mail server on the fixture certificate), with edits."""
    values = {
        "cert": str(CERTS / "mx1.pem"),
        "key": str(CERTS / "mx1.key"),
        "auth": "token: ${env:FGT_TOKEN}",
        "server_name": "mx1.example.test",
        "extra": "",
    } | overrides
    return """version: 1
devices:
  - name: fgt-1
    url: https://127.0.0.1:8443
    {auth}
    mail_servers:
      - name: mx1
        policy: {{vip: vip-mx1}}
        certificate:
          cert: {cert}
          key: {key}
        emailfilter_profile: mail-inbound
        ssl_profile: protect-mx1
        protocol_options: smtp-inbound
        probe:
          host: 127.0.0.1
          server_name: {server_name}
{extra}""".format(**values)


def write(tmp_path: Path, text: str, name: str = "site.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems_of(path: Path, environ: dict[str, str] | None = None) -> SiteInvalid:
    with pytest.raises(SiteInvalid) as info:
        load_site(path, environ=ENV if environ is None else environ)
    return info.value


# ---------------------------------------------------------------- the bad-site corpus


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 28


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_bad_site(case):
    line, key, fragment = expectation(case)
    error = problems_of(case)
    text = str(error)
    assert str(case) in text
    assert any(
        p.line == line and p.key == key and fragment in p.message and p.file == str(case)
        for p in error.problems
    ), text
    where = f"{case}:{line}" if line is not None else str(case)
    assert f"{where}: {key}: " in text if key else f"{where}: " in text
    for problem in error.problems:
        assert "\n" not in str(problem)
    assert isinstance(error, InputError)
    assert error.exit_code == 2


# ---------------------------------------------------------------- good sites


def test_single_device_example_loads_cleanly():
    site = load_site(EXAMPLES / "single-device.yml", environ=ENV)
    assert site.warnings == ()
    (device,) = site.devices
    assert device.token is not None
    assert device.token.get_secret_value() == "tok-abc"
    assert device.verify_tls == CERTS / "ca.pem"
    cert = device.mail_servers[0].certificate
    assert cert.cert == CERTS / "mx1.pem"
    assert cert.cert.is_absolute()
    assert cert.fingerprint_sha256 == pem_fingerprint((CERTS / "mx1.pem").read_text())
    assert cert.key_pem.get_secret_value() == (CERTS / "mx1.key").read_text()
    assert cert.sans == ("mx1.example.test",)
    assert cert.not_after is not None
    assert cert.not_after > datetime.now(UTC)
    assert device.mail_servers[0].fallback == ("certificate-inspection",)
    assert site.path == (EXAMPLES / "single-device.yml")


def test_fleet_example_loads_with_defaults_window_and_rollout():
    site = load_site(EXAMPLES / "fleet.yml", environ=ENV)
    assert site.warnings == ()
    assert [d.name for d in site.devices] == ["fgt-branch-1", "fgt-branch-2", "fgt-branch-3"]
    for device in site.devices:
        assert device.username == "admin"
        assert device.password is not None
        assert device.password.get_secret_value() == "pw-abc"
        assert device.token is None
        assert device.timeout == 15
        assert device.mail_servers[0].certificate.passphrase is not None
    assert [d.vdom for d in site.devices] == ["root", "root", "mail"]
    assert [d.mail_servers[0].policy.id for d in site.devices] == [None, 12, None]
    assert site.devices[1].mail_servers[0].probe.mode == "smtps"
    assert site.change_window is not None
    assert site.change_window.start.utcoffset() == timedelta(hours=1)
    assert site.change_window.end - site.change_window.start == timedelta(hours=4)
    assert site.rollout.max_failures == "10%"
    assert site.rollout.batch_size == 2


def test_site_on_disk_needs_no_network(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the loader tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    text = site_text().replace("https://127.0.0.1:8443", "https://fgt-1.example.test")
    site = load_site(write(tmp_path, text), environ=ENV)
    assert site.devices[0].url == "https://fgt-1.example.test"


# ---------------------------------------------------------------- references


def test_file_reference_is_relative_to_the_site_and_loses_one_newline(tmp_path):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "fgt.token").write_text("from-file\n")
    path = write(tmp_path, site_text(auth="token: ${file:secrets/fgt.token}"))
    site = load_site(path, environ={})
    assert site.devices[0].token is not None
    assert site.devices[0].token.get_secret_value() == "from-file"


@pytest.mark.parametrize("content", ["from-file\n\n", "from-file\r\n\r\n", " from-file\n", "from-file \n"])
def test_a_token_file_with_more_than_one_trailing_newline_is_refused(tmp_path, content):
    (tmp_path / "fgt.token").write_text(content, newline="")
    path = write(tmp_path, site_text(auth="token: ${file:fgt.token}"))
    error = problems_of(path, environ={})
    (problem,) = error.problems
    assert (problem.line, problem.key) == (5, "devices[0].token")
    assert "starts or ends with a space or line break" in problem.message
    assert "from-file" not in str(error)


def test_file_reference_with_an_absolute_path(tmp_path):
    secret = tmp_path / "abs.token"
    secret.write_text("absolute\r\n")
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    site = load_site(write(site_dir, site_text(auth=f"token: ${{file:{secret}}}")), environ={})
    assert site.devices[0].token is not None
    assert site.devices[0].token.get_secret_value() == "absolute"


def test_env_reference_inside_a_longer_string(tmp_path):
    text = site_text().replace("https://127.0.0.1:8443", "https://${env:FGT_HOST}:8443")
    site = load_site(write(tmp_path, text), environ=ENV | {"FGT_HOST": "fgt-7.example.test"})
    assert site.devices[0].url == "https://fgt-7.example.test:8443"


def test_environ_defaults_to_the_process_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FGT_TOKEN", "from-os-environ")
    site = load_site(write(tmp_path, site_text()))
    assert site.devices[0].token is not None
    assert site.devices[0].token.get_secret_value() == "from-os-environ"


def test_passphrase_from_env_opens_the_encrypted_key(tmp_path):
    text = site_text(key=str(CERTS / "mx1-encrypted.key")).replace(
        "mx1-encrypted.key\n", "mx1-encrypted.key\n          passphrase: ${env:MX_KEY_PASSPHRASE}\n"
    )
    site = load_site(write(tmp_path, text), environ=ENV)
    cert = site.devices[0].mail_servers[0].certificate
    assert cert.passphrase is not None
    assert cert.passphrase.get_secret_value() == PASSPHRASE
    assert "ENCRYPTED PRIVATE KEY" in cert.key_pem.get_secret_value()


def test_missing_passphrase_variable_is_not_also_called_wrong(tmp_path):
    text = site_text(key=str(CERTS / "mx1-encrypted.key")).replace(
        "mx1-encrypted.key\n", "mx1-encrypted.key\n          passphrase: ${env:NOT_SET}\n"
    )
    error = problems_of(write(tmp_path, text))
    assert [p.message for p in error.problems] == [
        "environment variable 'NOT_SET' is not set (${env:NOT_SET})"
    ]


# ---------------------------------------------------------------- defaults


def test_device_keys_win_over_defaults(tmp_path):
    text = site_text().replace("version: 1\n", "version: 1\ndefaults:\n  vdom: dmz\n  timeout: 30\n")
    text = text.replace("    mail_servers:", "    timeout: 5\n    mail_servers:")
    site = load_site(write(tmp_path, text), environ=ENV)
    assert site.devices[0].vdom == "dmz"
    assert site.devices[0].timeout == 5


def test_device_credentials_replace_the_default_credentials_as_a_whole(tmp_path):
    defaults = "version: 1\ndefaults:\n  token: ${env:FGT_TOKEN}\n"
    text = site_text(auth="username: admin\n    password: ${env:FGT_PASSWORD}").replace(
        "version: 1\n", defaults
    )
    site = load_site(write(tmp_path, text), environ=ENV)
    device = site.devices[0]
    assert device.token is None
    assert device.username == "admin"


def test_a_bad_default_is_reported_once_at_its_own_line(tmp_path):
    text = site_text().replace("version: 1\n", "version: 1\ndefaults:\n  vdom: 7\n")
    text += "  - name: fgt-2\n    url: https://127.0.0.2\n    token: t\n"
    error = problems_of(write(tmp_path, text))
    assert [(p.line, p.key) for p in error.problems] == [(3, "defaults.vdom")]
    assert "expected text, got a number" in error.problems[0].message


def test_every_problem_is_collected(tmp_path):
    text = site_text(server_name="mx1.example.test\n          mode: startls", key=str(CERTS / "other.key"))
    text = text.replace("https://127.0.0.1:8443", "ftp://127.0.0.1").replace(
        "version: 1\n", "version: 1\nbogus: 1\n"
    )
    error = problems_of(write(tmp_path, text))
    keys = {p.key for p in error.problems}
    assert keys == {
        "bogus",
        "devices[0].url",
        "devices[0].mail_servers[0].probe.mode",
        "devices[0].mail_servers[0].certificate.key",
    }
    assert len(str(error).splitlines()) == 4


# ---------------------------------------------------------------- warnings


def test_certificate_expiring_within_fourteen_days_is_a_warning(tmp_path):
    now = datetime.now(UTC)
    cert, key = write_leaf(
        tmp_path, "soon", not_before=now - timedelta(days=1), not_after=now + timedelta(days=5)
    )
    site = load_site(write(tmp_path, site_text(cert=str(cert), key=str(key))), environ=ENV)
    (warning,) = site.warnings
    assert warning.startswith("line 10: devices[0].mail_servers[0].certificate.cert: certificate expires in ")


def test_server_name_outside_the_sans_is_a_warning(tmp_path):
    site = load_site(write(tmp_path, site_text(server_name="mail.example.test")), environ=ENV)
    assert site.warnings == (
        "line 17: devices[0].mail_servers[0].probe.server_name: "
        "'mail.example.test' is not covered by the certificate's SANs (mx1.example.test)",
    )


def test_wildcard_san_covers_the_server_name(tmp_path):
    now = datetime.now(UTC)
    cert, key = write_leaf(
        tmp_path,
        "wild",
        sans=("*.example.test",),
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=90),
    )
    site = load_site(write(tmp_path, site_text(cert=str(cert), key=str(key))), environ=ENV)
    assert site.warnings == ()


def test_verify_tls_false_in_defaults_warns_once(tmp_path):
    text = site_text().replace("version: 1\n", "version: 1\ndefaults:\n  verify_tls: false\n")
    text += "  - name: fgt-2\n    url: https://127.0.0.2\n    token: t\n"
    site = load_site(write(tmp_path, text), environ=ENV)
    assert [d.verify_tls for d in site.devices] == [False, False]
    assert site.warnings == (
        "line 3: defaults.verify_tls: TLS verification is off: the device's identity is not checked",
    )


def test_insecure_http_is_allowed_when_asked_for(tmp_path):
    text = site_text().replace("https://127.0.0.1:8443", "http://127.0.0.1:8080")
    text = text.replace("    mail_servers:", "    allow_insecure_http: true\n    mail_servers:")
    site = load_site(write(tmp_path, text), environ=ENV)
    assert site.devices[0].allow_insecure_http is True


# ---------------------------------------------------------------- secrets


def test_canary_secrets_never_reach_error_text(tmp_path):
    text = site_text(
        auth="token: CANARY-TOKEN-123",
        key=str(CERTS / "mx1-encrypted.key") + "\n          passphrase: CANARY-PASSPHRASE-789",
        extra="          username: probe\n          password: CANARY-PASSWORD-456\n          port: 99999\n",
    )
    text = text.replace("https://127.0.0.1:8443", "https://admin:CANARY-URLPASS-000@127.0.0.1")
    error = problems_of(write(tmp_path, text))
    assert len(error.problems) == 3  # URL, wrong passphrase, probe port
    rendered = [str(error), repr(error), *(repr(p) for p in error.problems), str(error.args)]
    for canary in CANARIES:
        assert not any(canary in r for r in rendered), canary


def test_duplicate_yaml_key_does_not_quote_the_secret():
    case = HERE / "site_cases" / "duplicate-yaml-key.yml"
    assert "CANARY-TOKEN-123" in case.read_text()
    assert "CANARY-TOKEN-123" not in str(problems_of(case))


def test_secrets_are_hidden_in_repr_and_redacted_dump():
    site = load_site(EXAMPLES / "fleet.yml", environ=ENV)
    dumped = redacted_dump(site)
    device = dumped["devices"][0]
    assert device["password"] == "***"
    assert device["mail_servers"][0]["certificate"]["passphrase"] == "***"
    assert device["mail_servers"][0]["certificate"]["key_pem"] == "***"
    flat = repr(dumped) + repr(site)
    for secret in ("pw-abc", PASSPHRASE, "PRIVATE KEY"):
        assert secret not in flat


# ---------------------------------------------------------------- files and data


def test_missing_site_file(tmp_path):
    path = tmp_path / "nope.yml"
    with pytest.raises(SiteInvalid, match=r"nope\.yml: site file not found"):
        load_site(path)


def test_zero_byte_file(tmp_path):
    error = problems_of(write(tmp_path, ""))
    assert [p.message for p in error.problems] == ["the file is empty; a site needs version: 1 and devices:"]


def test_paths_resolve_against_the_site_folder_not_the_cwd(tmp_path, monkeypatch):
    site_dir = tmp_path / "sites"
    (site_dir / "certs").mkdir(parents=True)
    for name in ("mx1.pem", "mx1.key", "ca.pem"):
        shutil.copy(CERTS / name, site_dir / "certs" / name)
    text = site_text(cert="certs/mx1.pem", key="certs/mx1.key")
    text = text.replace("    mail_servers:", "    verify_tls: certs/ca.pem\n    mail_servers:")
    write(site_dir, text)
    monkeypatch.chdir(tmp_path)
    site = load_site(Path("sites") / "site.yml", environ=ENV)
    assert site.devices[0].verify_tls == site_dir / "certs" / "ca.pem"
    assert site.devices[0].mail_servers[0].certificate.key == site_dir / "certs" / "mx1.key"
    assert site.base_dir == site_dir


def test_load_site_data_validates_plain_data_without_lines(tmp_path):
    data: dict[str, Any] = {
        "version": 1,
        "devices": [
            {"name": "fgt-1", "url": "https://127.0.0.1", "token": "${env:FGT_TOKEN}", "vdom": ["x"]}
        ],
    }
    with pytest.raises(SiteInvalid) as info:
        load_site_data(data, base_dir=tmp_path, source="<args>", environ=ENV)
    (problem,) = info.value.problems
    assert str(problem) == "<args>: devices[0].vdom: expected text, got a list"
    data["devices"][0]["vdom"] = "root"
    site = load_site_data(data, base_dir=tmp_path, source="<args>", environ=ENV)
    assert isinstance(site, Site)
    assert site.base_dir == tmp_path


# Every structural mutation of a valid site either loads or fails as SiteInvalid with one-line problems.
BASE_LINES = site_text(cert=str(CERTS / "mx1.pem"), key=str(CERTS / "mx1.key")).splitlines()
OPTIONAL_LINES = {"server_name"}


def outcome(path: Path) -> list[str] | None:
    """None when the site loads, else its problems as text (anything but SiteInvalid propagates)."""
    try:
        load_site(path, environ=ENV)
    except SiteInvalid as error:
        return [f"{p.line}|{p}" for p in error.problems]
    return None


@pytest.mark.parametrize("drop", range(len(BASE_LINES)))
def test_dropping_any_required_line_fails_cleanly(tmp_path, drop):
    lines = BASE_LINES[:drop] + BASE_LINES[drop + 1 :]
    problems = outcome(write(tmp_path, "\n".join(lines) + "\n"))
    optional = any(BASE_LINES[drop].strip().startswith(f"{key}:") for key in OPTIONAL_LINES)
    if optional or not BASE_LINES[drop].strip():
        assert problems is None
    else:
        assert problems
        assert all("\n" not in p and not p.startswith("None|") for p in problems), problems


@pytest.mark.parametrize("value", ["[]", "{}", "7", "null", "true", "'x'", "-1.5", "2026-01-01"])
def test_any_value_of_the_wrong_shape_fails_cleanly(tmp_path, value):
    failures = []
    for index, line in enumerate(BASE_LINES):
        if ": " not in line or line.strip().startswith("- "):
            continue
        head = line.split(": ", 1)[0]
        mutated = [*BASE_LINES[:index], f"{head}: {value}", *BASE_LINES[index + 1 :]]
        problems = outcome(write(tmp_path, "\n".join(mutated) + "\n", name=f"mut-{index}.yml"))
        if problems is not None:
            failures.extend(problems)
    assert len(failures) >= 5
    assert all("\n" not in p and not p.startswith("None|") for p in failures), failures
