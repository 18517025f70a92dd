"""The site loader: the bad-site corpus, the shipped examples, references, defaults, warnings, secrets.

Each file in ``site_cases/`` starts with ``# expect: LINE | KEY | MESSAGE FRAGMENT`` ("-" for no line or
no key): the problem ``load_site`` must report for it. A new way to get the site file wrong is a new
file there, not new code.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fortiauto.certs import pem_fingerprint
from fortiauto.desired import desired_objects, recommended
from fortiauto.errors import InputError, SiteInvalid
from fortiauto.fortios.connect import client_for
from fortiauto.fortios.version import FortiOSVersion
from fortiauto.site import Site, loader, yamldata
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
    assert len(CASES) >= 95


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


# ---------------------------------------------------------------- hostile files (issue 14)

FILE_KEYS = {
    # where the site names a file -> (key path, line, what messages call it)
    "token": ("devices[0].token", 5, "file"),
    "cert": ("devices[0].mail_servers[0].certificate.cert", 10, "certificate file"),
    "key": ("devices[0].mail_servers[0].certificate.key", 11, "key file"),
    "ca": ("devices[0].verify_tls", 6, "CA bundle"),
}


def hostile_file(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A path that must never be read as a file's text, and the reason the loader must give."""
    target = tmp_path / f"hostile-{kind}"
    if kind == "fifo":
        os.mkfifo(target)  # nobody ever writes: a blocking open or read would hang forever
        return target, "is a FIFO (named pipe), not a regular file"
    if kind == "symlink-loop":
        target.symlink_to(target.name)
        return target, "is a symbolic link loop"
    if kind == "folder":
        target.mkdir()
        return target, "is a folder, not a regular file"
    if kind == "missing":
        return target, "not found"
    if kind == "dev-zero":
        return Path("/dev/zero"), "is a character device, not a regular file"
    if kind == "too-big":
        with target.open("wb") as handle:  # sparse: 2 MB long, nothing written
            handle.truncate(2 * 1024 * 1024)
        return target, "is 2 MB; the limit is 1 MB"
    raise AssertionError(kind)


def site_naming(where: str, path: Path) -> str:
    if where == "token":
        return site_text(auth=f"token: ${{file:{path}}}")
    if where == "ca":
        return site_text().replace("    mail_servers:", f"    verify_tls: {path}\n    mail_servers:")
    return site_text(**{where: str(path)})


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", ["fifo", "symlink-loop", "folder", "missing", "dev-zero", "too-big"])
@pytest.mark.parametrize("where", sorted(FILE_KEYS))
def test_a_named_file_that_is_not_a_small_regular_file_is_one_problem(tmp_path, where, kind):
    path, reason = hostile_file(tmp_path, kind)
    key, line, what = FILE_KEYS[where]
    error = problems_of(write(tmp_path, site_naming(where, path)))
    (problem,) = [p for p in error.problems if p.key == key]
    assert problem.line == line
    assert problem.message.startswith(f"{what} {str(path)!r} {reason}")
    assert "\n" not in str(problem)


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("fifo", "the site file is a FIFO (named pipe), not a regular file"),
        ("symlink-loop", "the site file is a symbolic link loop"),
        ("folder", "the site file is a folder, not a regular file"),
        ("missing", "site file not found"),
        ("dev-zero", "the site file is a character device, not a regular file"),
    ],
)
def test_a_site_file_that_is_not_a_regular_file_is_refused_without_reading(tmp_path, kind, message):
    path, _ = hostile_file(tmp_path, kind)
    with pytest.raises(SiteInvalid) as info:
        load_site(path, environ=ENV)
    assert [str(p) for p in info.value.problems] == [f"{path}: {message}"]


def test_a_site_file_over_4_mb_is_refused_from_its_size_alone(tmp_path, monkeypatch):
    path = tmp_path / "huge.yml"
    with path.open("wb") as handle:
        handle.truncate(5 * 1024 * 1024 + 1)
    reads: list[int] = []
    real_read = os.read
    monkeypatch.setattr(os, "read", lambda fd, n: reads.append(n) or real_read(fd, n))
    with pytest.raises(SiteInvalid) as info:
        load_site(path, environ=ENV)
    assert [str(p) for p in info.value.problems] == [f"{path}: the site file is 5 MB; the limit is 4 MB"]
    assert reads == []


def test_a_site_file_that_is_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin1.yml"
    path.write_bytes(site_text().replace("mx1\n", "mx\xe91\n", 1).encode("latin-1"))
    error = problems_of(path)
    assert [(p.line, p.message) for p in error.problems] == [(7, "the site file is not UTF-8 text")]


def test_a_referenced_file_is_read_once_per_load(tmp_path, monkeypatch):
    text = site_text().replace("    mail_servers:", f"    verify_tls: {CERTS / 'ca.pem'}\n    mail_servers:")
    device = text.split("devices:\n", 1)[1]
    fleet = text + "".join(
        device.replace("fgt-1", f"fgt-{i}").replace("127.0.0.1:8443", f"127.0.0.{i}:8443")
        for i in range(2, 51)
    )
    opened: list[Path] = []
    real = loader.read_capped
    monkeypatch.setattr(
        loader, "read_capped", lambda path, cap: opened.append(Path(path)) or real(path, cap=cap)
    )
    site = load_site(write(tmp_path, fleet), environ=ENV)
    assert len(site.devices) == 50
    assert sorted(p.name for p in opened) == ["ca.pem", "mx1.key", "mx1.pem", "site.yml"]
    assert len({d.mail_servers[0].certificate.fingerprint_sha256 for d in site.devices}) == 1


# ---------------------------------------------------------------- YAML that exhausts or changes meaning


def bomb_text(levels: int = 9, width: int = 9) -> str:
    lines = [f"  a0: &a0 [{', '.join(['lol'] * width)}]"]
    lines += [f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels + 1)]
    return site_text().replace("version: 1\n", "version: 1\nbomb:\n" + "\n".join(lines) + "\n")


@pytest.mark.timeout(20)
def test_an_alias_bomb_is_refused_after_a_bounded_expansion(tmp_path):
    error = problems_of(write(tmp_path, bomb_text()))
    (problem,) = error.problems
    assert problem.message == "invalid YAML: aliases expand to more than 100,000 values"
    assert problem.key.startswith("bomb.a")


@pytest.mark.parametrize(
    "body",
    [
        "x: [" + "1," * 1_900_000 + "1]",
        "x:\n" + "- 1\n" * 900_000,
        "x:\n" + "- " * 999 + "1\n" + "- 1\n" * 260_000,
    ],
    ids=["flow", "block", "nested"],
)
def test_millions_of_tiny_values_under_the_size_cap_are_refused_before_parsing(tmp_path, body):
    path = tmp_path / "dense.yml"
    path.write_text(f"version: 1\n{body}\n")
    assert path.stat().st_size < 4 * 1024 * 1024
    error = problems_of(path)
    assert [str(p) for p in error.problems] == [
        f"{path}: invalid YAML: more than 250,000 values (keys, items, scalars); split the site file"
    ]


def test_aliases_and_merges_within_the_budget_load(tmp_path):
    text = site_text().replace("      - name: mx1\n", "      - &mx name: mx1\n")
    text = text.replace(
        "    mail_servers:\n      - &mx name: mx1", "    mail_servers:\n      - &mx\n        name: mx1"
    )
    text += "  - name: fgt-2\n    url: https://127.0.0.2\n    token: t2\n    mail_servers:\n"
    text += "      - <<: *mx\n        ssl_profile: protect-mx2\n"
    site = load_site(write(tmp_path, text), environ=ENV)
    merged = site.devices[1].mail_servers[0]
    assert merged.ssl_profile == "protect-mx2"
    assert merged.emailfilter_profile == site.devices[0].mail_servers[0].emailfilter_profile


@pytest.mark.parametrize(
    ("written", "loaded"), [("yes", "yes"), ("on", "on"), ("no", "no"), ("1:30", "1:30")]
)
def test_plain_scalars_follow_yaml_1_2_so_words_stay_words(tmp_path, written, loaded):
    text = site_text().replace("ssl_profile: protect-mx1", f"ssl_profile: {written}")
    site = load_site(write(tmp_path, text), environ=ENV)
    assert site.devices[0].mail_servers[0].ssl_profile == loaded


# Names as FortiOS takes them: sent exactly as written (YAML-quoted where YAML needs it), never re-read.
VERBATIM_NAMES = ["mail: inbound", "mail #1", "null", "true", "~", "- item", "mail&more", "{x}", "50%"]


@pytest.mark.parametrize("name", VERBATIM_NAMES)
def test_a_name_that_looks_like_yaml_is_sent_verbatim(tmp_path, name):
    quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    text = site_text()
    for key in ("emailfilter_profile", "ssl_profile", "protocol_options"):
        text = text.replace(f"{key}: ", f"{key}: {quoted} #", 1)
    text = text.replace("policy: {vip: vip-mx1}", f"policy: {{name: {quoted}}}")
    (tmp_path / "templates").mkdir()
    shutil.copytree(ROOT / "templates" / "desired", tmp_path / "templates" / "desired")
    site = load_site(write(tmp_path, text), environ=ENV)
    ms = site.devices[0].mail_servers[0]
    assert (ms.emailfilter_profile, ms.ssl_profile, ms.protocol_options, ms.policy.name) == (name,) * 4
    version = FortiOSVersion.parse("7.0.12")
    for objects in (recommended(ms, version), desired_objects(ms, version, templates=tmp_path / "templates")):
        assert objects["emailfilter"]["name"] == name
        assert objects["ssl_profile"]["name"] == name
        assert objects["protocol_options"]["name"] == name
        assert objects["policy"]["emailfilter-profile"] == name


# ---------------------------------------------------------------- verify_tls pins (issue 19)

PIN = "ab" * 32


@pytest.mark.parametrize(
    "written", [f"sha256:{PIN}", f"SHA256:{PIN.upper()}", "sha256:" + ":".join([PIN[:2].upper()] * 32)]
)
def test_verify_tls_pins_the_device_certificate(tmp_path, written):
    text = site_text().replace("version: 1\n", f'version: 1\ndefaults:\n  verify_tls: "{written}"\n')
    site = load_site(write(tmp_path, text), environ=ENV)
    device = site.devices[0]
    assert device.tls_pin_sha256 == PIN
    assert device.verify_tls == f"sha256:{PIN}"
    assert site.warnings == ()


def test_a_device_without_a_pin_has_none(tmp_path):
    site = load_site(write(tmp_path, site_text()), environ=ENV)
    assert site.devices[0].tls_pin_sha256 is None


def test_one_firewall_may_appear_once_per_vdom(tmp_path):
    text = site_text() + "  - name: fgt-1-dmz\n    url: https://127.0.0.1:8443\n    vdom: dmz\n    token: t\n"
    site = load_site(write(tmp_path, text), environ=ENV)
    assert [(d.url, d.vdom) for d in site.devices] == [
        ("https://127.0.0.1:8443", "root"),
        ("https://127.0.0.1:8443", "dmz"),
    ]


# ---------------------------------------------------------------- validate runs apply's offline checks

URLS = st.one_of(
    st.sampled_from(
        [
            "https://127.0.0.1",
            "https://[::1]:8443",
            "https://fgt.example.test:10443/",
            "https://fgt.example.test/api",
            "https://fgt.example.test?x=1",
            "https://fgt.example.test#x",
            "https://fgt_1.example.test",
            "https://fgt..example.test",
            "https://[::g]/",
            "https://-fgt.example.test",
            "https://fgt.example.test:0",
            "https://fgt.example.test:99999",
            "http://fgt.example.test",
        ]
    ),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30).map(
        lambda tail: "https://" + tail
    ),
)
TOKENS = st.one_of(
    st.sampled_from(["abc", "", " ", "abc\n", "a b", "abc\r\n\r\n", "t\x00k", "tök"]),
    st.text(max_size=12),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(url=URLS, token=TOKENS)
def test_what_the_loader_accepts_the_client_accepts(tmp_path, url, token):
    """``validate`` is ``load_site``: every check the client makes before its first request is in it."""
    data: dict[str, Any] = {
        "version": 1,
        "devices": [{"name": "fgt-1", "url": url, "token": token, "allow_insecure_http": True}],
    }
    try:
        site = load_site_data(data, base_dir=tmp_path, environ={})
    except SiteInvalid:
        return
    client_for(site.devices[0])  # raises InputError where the loader let something through


# ---------------------------------------------------------------- through the CLI, as a user runs it

CLI_CASES = [
    "alias-bomb",
    "nested-too-deep",
    "file-ref-dev-zero",
    "cert-dev-zero",
    "emailfilter-name-80-chars",
    "device-name-newline",
    "device-name-pipe",
    "mail-server-name-markup",
    "token-file-two-newlines",
    "url-with-path",
    "same-firewall-two-names",
    "probe-timeout-nan",
]


def validate_cli(path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FGT_")} | ENV
    return subprocess.run(
        [sys.executable, "-m", "fortiauto", "validate", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,  # a hang guard, not a timing check
        check=False,
    )


@pytest.mark.e2e
@pytest.mark.parametrize("name", CLI_CASES)
def test_validate_exits_2_with_the_loaders_lines_verbatim(name):
    case = HERE / "site_cases" / f"{name}.yml"
    expected = [str(p) for p in problems_of(case).problems]
    done = validate_cli(case)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.splitlines() == [f"error: {expected[0]}", *expected[1:]]


@pytest.mark.e2e
@pytest.mark.timeout(90)
def test_validate_of_a_token_from_a_fifo_exits_2_without_hanging(tmp_path):
    os.mkfifo(tmp_path / "token")
    done = validate_cli(write(tmp_path, site_text(auth="token: ${file:token}")))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"error: {tmp_path / 'site.yml'}:5: devices[0].token: file 'token' is a FIFO (named pipe), "
        "not a regular file (${file:token}, relative to the site file)"
    ]


# ------------------------------------------------ fuzz: any text loads or is one-line problems

YAML_BITS = st.sampled_from(
    [
        "version: 1\n",
        "devices:\n",
        "  - name: fgt-1\n",
        "    url: https://127.0.0.1\n",
        "    token: t\n",
        "&a ",
        "*a",
        "<<: *a\n",
        "!!str ",
        "!tag ",
        "? [x]\n",
        ": y\n",
        "- ",
        "[",
        "]",
        "{",
        "}",
        ",",
        "'",
        '"',
        "#",
        "\t",
        "\n",
        "  ",
        "${env:X}",
        "${file:/dev/zero}",
        ".inf",
        ".nan",
        "~",
        "null",
        "0x1F",
        "---\n",
        "\x00",
        "\ufeff",
        "é",
        "\u2028",
        "key: value\n",
        "mail_servers: [{name: mx1}]\n",
        '"k\\nerror: forged": 1\n',  # a key that would forge a line of output
        'token: "${env:A\\nerror: forged}"\n',  # so would a reference's name
        '"a.b[0]": 1\n',  # and a key that looks like a path
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(YAML_BITS, max_size=40))
def test_any_text_loads_or_fails_with_one_line_problems(tmp_path, parts):
    path = tmp_path / "fuzz.yml"
    path.write_text("".join(parts), encoding="utf-8")
    try:
        load_site(path, environ={"X": "x"})
    except SiteInvalid as error:
        problems = error.problems
    else:
        return
    assert problems
    assert all("\n" not in str(p) and str(p).startswith(str(path)) for p in problems)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'version: 1\n"x\\nerror: forged": 1\n',
            ":2: ['x\\nerror: forged']: unknown key 'x\\nerror: forged'",
        ),
        ('version: 1\n"a.b": 1\n', ":2: ['a.b']: unknown key 'a.b'"),
        (
            site_text(auth='token: "${env:A\\nerror: forged}"'),
            ":5: devices[0].token: a ${...} reference contains a line break or control character",
        ),
    ],
)
def test_no_key_or_reference_can_forge_a_problem_line(tmp_path, text, expected):
    path = write(tmp_path, text)
    lines = str(problems_of(path)).splitlines()
    assert f"{path}{expected}" in lines
    assert all(line.startswith(str(path)) for line in lines)


def test_the_pure_python_parser_gives_the_same_data_and_lines(monkeypatch):
    text = (EXAMPLES / "fleet.yml").read_text() + "aliases:\n  a0: &a0 [lol, 1, .inf]\n  a1: [*a0, *a0]\n"
    fast = yamldata.parse_yaml(text, file="f")
    monkeypatch.setattr(yamldata, "_CParser", None)
    slow = yamldata.parse_yaml(text, file="f")
    assert (slow.data, slow.lines, slow.references) == (fast.data, fast.lines, fast.references)
    assert fast.problems == slow.problems == []
    (problem,) = yamldata.parse_yaml(text + "x: [\n", file="f").problems  # its own words, the same line
    assert (problem.line, problem.message.startswith("invalid YAML: ")) == (60, True)
