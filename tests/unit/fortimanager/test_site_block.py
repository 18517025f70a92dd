"""The site file's ``fortimanager:`` block and per-device routing: loaded, or refused with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from fortiauto.errors import SiteInvalid
from fortiauto.site.loader import load_fortimanager, load_site, redacted_dump

TOKEN = "CANARY-FMG-KEY-0123456789abcdef"
DEVICE_TOKEN = "devtoken-0123456789abcdefghijkl"


def write(tmp_path: Path, text: str, name: str = "site.yml") -> Path:
    (tmp_path / "fmg.token").write_text(TOKEN + "\n")
    (tmp_path / "ca.pem").write_text(CA_PEM)
    path = tmp_path / name
    path.write_text(text)
    return path


CA_PEM = (Path(__file__).resolve().parents[2] / "fixtures" / "certs" / "ca.pem").read_text()

SITE = f"""version: 1
fortimanager:
  url: https://fmg.example.net:8443
  token: ${{file:fmg.token}}
  adom: emea
  verify_tls: ca.pem
  workspace: lock
  lock_wait: 30
devices:
  - name: fgt-edge-1
    url: https://192.0.2.10
    token: {DEVICE_TOKEN}
    fortimanager: {{device: edge-1, package: branch-mail, vdom: root}}
  - name: fgt-edge-2
    url: https://192.0.2.11
    token: {DEVICE_TOKEN}
"""

HEAD, BODY = SITE.split("devices:", 1)


def test_block_and_routing_load(tmp_path: Path) -> None:
    site = load_site(write(tmp_path, SITE))
    fmg = site.fortimanager
    assert fmg is not None
    assert (fmg.url, fmg.adom, fmg.workspace, fmg.lock_wait) == (
        "https://fmg.example.net:8443",
        "emea",
        "lock",
        30,
    )
    assert fmg.token is not None
    assert fmg.token.get_secret_value() == TOKEN
    assert fmg.verify_tls == tmp_path / "ca.pem"
    routed, direct = site.devices
    assert routed.fortimanager is not None
    assert (routed.fortimanager.device, routed.fortimanager.package, routed.fortimanager.vdom) == (
        "edge-1",
        "branch-mail",
        "root",
    )
    assert direct.fortimanager is None
    assert TOKEN not in str(redacted_dump(site))
    assert TOKEN not in repr(site)


@pytest.mark.parametrize(
    ("change", "line", "key", "fragment"),
    [
        (
            ("  workspace: lock\n", "  workspace: sometimes\n"),
            7,
            "fortimanager.workspace",
            "expected one of: auto, lock, off",
        ),
        (("  adom: emea\n", "  adom: emea\n  username: api\n"), 4, "fortimanager.token", "not both"),
        (("  verify_tls: ca.pem\n", "  verify_tls: nope.pem\n"), 6, "fortimanager.verify_tls", "not found"),
        (("  adom: emea\n", "  adom: emea\n  pakage: x\n"), 6, "fortimanager.pakage", "unknown key"),
        (("package: branch-mail, ", ""), 13, "devices[0].fortimanager.package", "required key is missing"),
        (("https://fmg.example.net:8443", "http://fmg.example.net"), 3, "fortimanager.url", "clear text"),
    ],
)
def test_bad_blocks_name_file_line_and_key(
    tmp_path: Path, change: tuple[str, str], line: int, key: str, fragment: str
) -> None:
    text = SITE.replace(*change)
    assert text != SITE
    with pytest.raises(SiteInvalid) as info:
        load_site(write(tmp_path, text))
    problems = [str(p) for p in info.value.problems]
    assert any(f"site.yml:{line}: {key}:" in p and fragment in p for p in problems), problems
    assert all(TOKEN not in p for p in problems)


def test_routed_device_without_the_block_is_refused(tmp_path: Path) -> None:
    text = "version: 1\ndevices:" + BODY
    with pytest.raises(
        SiteInvalid, match=r"reached through FortiManager .* no top-level fortimanager: block"
    ):
        load_site(write(tmp_path, text))


def test_block_alone_for_the_inventory(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD, "fmg.yml")
    spec = load_fortimanager(path)
    assert (spec.adom, spec.workspace) == ("emea", "lock")
    with pytest.raises(SiteInvalid, match=r"fmg\.yml:1: fortimanager: no fortimanager: block"):
        load_fortimanager(write(tmp_path, "version: 1\n", "fmg.yml"))
    with pytest.raises(SiteInvalid, match=r"fmg\.yml:4: fortimanager\.token: environment variable 'NOPE'"):
        load_fortimanager(write(tmp_path, HEAD.replace("${file:fmg.token}", "${env:NOPE}"), "fmg.yml"))
