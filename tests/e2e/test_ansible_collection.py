"""The collection as AWX shops install it: documentation, lint, validate-modules, build, EE, credential type.

No lab here: these check what ships (``collections/ansible_collections/fortiauto/fortigate``,
the playbooks, the execution-environment definition and the AWX credential type) with the
tools users run on them - ``ansible-doc``, ``ansible-lint`` from the repository root,
ansible-test's validate-modules, ``ansible-galaxy collection build``. Cost: about 40 s.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml

from fortiauto.api import env_key, resolve_device
from fortiauto.site import CertificateSpec, Device, MailServer, PolicyRef, ProbeSpec, ProbeTransaction
from fortiauto.site.models import PreviousBindings, SpamCheck
from tests.e2e.ansible_kit import BIN, COLLECTION, REPO, ansible_env

pytestmark = pytest.mark.e2e

PLUGINS = "ansible_collections.fortiauto.fortigate.plugins"


@pytest.fixture(scope="module")
def plugins() -> Any:
    sys.path.insert(0, str(REPO / "collections"))
    try:
        yield {
            "module": importlib.import_module(f"{PLUGINS}.modules.smtp_inspection"),
            "spec": importlib.import_module(f"{PLUGINS}.module_utils.smtp_inspection"),
        }
    finally:
        sys.path.remove(str(REPO / "collections"))


def _spec_from_docs(options: dict[str, Any]) -> dict[str, Any]:
    """DOCUMENTATION's options in argument_spec shape (the keys both can state)."""
    out: dict[str, Any] = {}
    for name, doc in options.items():
        entry = {k: doc[k] for k in ("type", "choices", "default", "elements") if k in doc}
        if doc.get("required"):
            entry["required"] = True
        if "suboptions" in doc:
            entry["options"] = _spec_from_docs(doc["suboptions"])
        out[name] = entry
    return out


def _comparable(spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, entry in spec.items():
        kept = {k: v for k, v in entry.items() if k not in ("no_log", "options")}
        if "options" in entry:
            kept["options"] = _comparable(entry["options"])
        out[name] = kept
    return out


def test_documented_options_match_the_argument_spec(plugins):
    docs = yaml.safe_load(plugins["module"].DOCUMENTATION)
    assert _spec_from_docs(docs["options"]) == _comparable(plugins["spec"].ARGUMENT_SPEC)
    assert all(attribute.get("description") for attribute in docs["attributes"].values())
    assert all(re.fullmatch(r".+ \(@[\w-]+\)", author) for author in docs["author"])
    assert yaml.safe_load(plugins["module"].EXAMPLES)


def _result_keys() -> set[str]:
    """Every key a result of the module can carry: the engine's device JSON and what Ansible adds."""
    from fortiauto.results import DeviceResult  # noqa: PLC0415

    engine = set(DeviceResult(name="x", status="changed").to_json()) - {"warnings"}
    api = {"run_id", "journal", "tasks", "diff", "notes"}
    ansible = {"plan_warnings", "changed", "rolled_back", "failed", "msg"}
    return (engine | api | ansible) - {"diff", "notes", "changed", "failed"}


def test_return_documents_every_key_the_module_returns(plugins):
    returned = yaml.safe_load(plugins["module"].RETURN)
    assert _result_keys() <= set(returned), _result_keys() - set(returned)
    assert {"name", "forced", "exit_code"} <= set(returned)


def _keys(model: Any) -> set[str]:
    return set(model.model_fields) - set(getattr(model, "LOADER_FIELDS", ()))


def test_module_options_cover_every_site_file_key(plugins):
    """A key added to the site file must reach the module too (or this names it)."""
    spec = plugins["spec"].ARGUMENT_SPEC
    # A device reached through FortiManager needs the site's fortimanager block: site file only.
    assert _keys(Device) - {"name", "fortimanager"} <= set(spec)
    servers = spec["mail_servers"]["options"]
    assert set(servers) == _keys(MailServer)
    assert tuple(servers["spam_checks"]["choices"]) == get_args(SpamCheck)
    assert set(servers["policy"]["options"]) == _keys(PolicyRef)
    assert set(servers["previous"]["options"]) == _keys(PreviousBindings)
    assert set(servers["certificate"]["options"]) == _keys(CertificateSpec)
    assert set(servers["probe"]["options"]) == _keys(ProbeSpec)
    assert set(servers["probe"]["options"]["transaction"]["options"]) == _keys(ProbeTransaction)
    no_log = {"token", "password"}
    assert {name for name, option in spec.items() if option.get("no_log")} == no_log
    assert servers["certificate"]["options"]["passphrase"]["no_log"] is True
    assert servers["probe"]["options"]["password"]["no_log"] is True


@pytest.mark.parametrize(
    ("kind", "name", "headings"),
    [
        (
            "module",
            "fortiauto.fortigate.smtp_inspection",
            ("OPTIONS", "ATTRIBUTES", "EXAMPLES", "RETURN VALUES"),
        ),
        ("callback", "fortiauto.fortigate.summary", ("OPTIONS",)),
        ("inventory", "fortiauto.fortigate.site", ("OPTIONS", "EXAMPLES")),
    ],
)
def test_ansible_doc_renders_the_plugins(tmp_path, kind, name, headings):
    done = subprocess.run(
        [str(BIN / "ansible-doc"), "-t", kind, name],
        env=ansible_env(tmp_path) | {"COLUMNS": "100"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "ERROR" not in done.stderr
    for heading in headings:
        assert heading in done.stdout


def _ignored(version: str) -> set[tuple[str, str]]:
    """The collection's sanity ignore file: (path, code) pairs, each with its reason."""
    text = (COLLECTION / "tests" / "sanity" / f"ignore-{version}.txt").read_text()
    pairs = set()
    for line in text.splitlines():
        path, rest = line.split(" ", 1)
        test_code, reason = rest.split(" # ", 1)
        assert reason.strip()
        pairs.add((path, test_code.removeprefix("validate-modules:").strip()))
    return pairs


@pytest.mark.parametrize(
    ("plugin_type", "path"),
    [
        ("modules", "plugins/modules/smtp_inspection.py"),
        ("callback", "plugins/callback/summary.py"),
        ("inventory", "plugins/inventory/site.py"),
    ],
)
def test_validate_modules_is_clean(tmp_path, plugin_type, path):
    """ansible-test's validate-modules, run as ansible-test runs it (its venv needs the network)."""
    pytest.importorskip("voluptuous", reason="validate-modules needs voluptuous (pip install voluptuous)")
    pytest.importorskip("antsibull_docs_parser", reason="validate-modules needs antsibull-docs-parser")
    import ansible  # noqa: PLC0415
    import ansible_test  # noqa: PLC0415

    validate = Path(ansible_test.__file__).parent / "_util/controller/sanity/validate-modules/validate.py"
    command = [sys.executable, str(validate), "--format", "json", "--arg-spec"]
    command += ["--collection", "ansible_collections/fortiauto/fortigate", "--collection-version", "0.1.0"]
    if plugin_type != "modules":
        command += ["--plugin-type", plugin_type]
    env = ansible_env(tmp_path) | {
        "PYTHONPATH": str(REPO / "collections"),
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections"),
    }
    done = subprocess.run(
        [*command, path], cwd=COLLECTION, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode in (0, 3), done.stderr
    found = json.loads(done.stdout or "{}").get(path, {})
    version = ".".join(ansible.__version__.split(".")[:2])
    left = [e for e in found.get("errors", []) if (path, e["code"]) not in _ignored(version)]
    assert left == [], left
    assert found.get("warnings", []) == []


@pytest.mark.timeout(180)
def test_ansible_lint_production_profile_passes_from_the_repository_root(tmp_path):
    done = subprocess.run(
        [str(BIN / "ansible-lint"), "--nocolor"],
        cwd=REPO,
        env=ansible_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Profile 'production' was required, and it passed" in done.stdout + done.stderr


def test_the_collection_builds_with_its_plugins_and_docs(tmp_path):
    done = subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "build", str(COLLECTION), "--output-path", str(tmp_path)],
        env=ansible_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (artifact,) = tmp_path.glob("fortiauto-fortigate-*.tar.gz")
    with tarfile.open(artifact) as archive:
        names = set(archive.getnames())
    for member in (
        "plugins/modules/smtp_inspection.py",
        "plugins/action/smtp_inspection.py",
        "plugins/module_utils/smtp_inspection.py",
        "plugins/plugin_utils/run_id.py",
        "plugins/callback/summary.py",
        "plugins/inventory/site.py",
        "meta/runtime.yml",
        "README.md",
        "MANIFEST.json",
    ):
        assert member in names, member
    assert not [n for n in names if "__pycache__" in n]


def test_execution_environment_installs_the_collection_and_fortiauto():
    """ansible-builder 3's schema, and the final image gets the wheel and the collection tarball."""
    ee = yaml.safe_load((REPO / "execution-environment.yml").read_text())
    assert ee["version"] == 3
    assert {"ansible_core", "ansible_runner"} <= set(ee["dependencies"])
    steps = " ".join(ee["additional_build_steps"]["append_final"])
    assert "pip install --no-cache-dir /tmp/fortiauto-dist/fortiauto-*.whl" in steps
    assert "ansible-galaxy collection install" in steps
    assert "fortiauto-fortigate-*.tar.gz" in steps
    assert "FORTIAUTO_JOURNAL_DIR=" in steps
    assert ee["additional_build_files"] == [{"src": "dist", "dest": "dist"}]


def test_credential_type_injects_what_the_module_reads(tmp_path):
    """The AWX credential type's injectors set the variables resolve_device falls back to."""
    definition = yaml.safe_load((REPO / "awx" / "credential-type.yml").read_text())
    fields = {f["id"]: f for f in definition["inputs"]["fields"]}
    assert fields["token"]["secret"] is True
    assert fields["password"]["secret"] is True
    env = definition["injectors"]["env"]
    assert env["FORTIAUTO_TOKEN"] == "{{ token }}"
    example = yaml.safe_load((REPO / "awx" / "credential-example.yml").read_text())
    assert example["credential_type"] == definition["name"]
    # What AWX would inject, rendered by hand: the module takes the token from there.
    injected = {"FORTIAUTO_TOKEN": "from-awx"}
    params = {"device": "fgt-001", "url": "https://192.0.2.1"}
    from fortiauto.api import _device_data  # noqa: PLC0415 - the seam the credential feeds

    assert _device_data(params, injected)["token"] == "from-awx"
    assert _device_data(params, injected | {f"FORTIAUTO_TOKEN_{env_key('fgt-001')}": "own"})["token"] == "own"
    tokens = tmp_path / "tokens"  # the injector's file template for device_tokens
    tokens.write_text("FGT_002=other\nFGT_001=from-file\n")
    assert _device_data(params, injected | {"FORTIAUTO_TOKENS_FILE": str(tokens)})["token"] == "from-file"
    assert definition["injectors"]["file"]["template.device_tokens"] == "{{ device_tokens }}"
    assert env["FORTIAUTO_TOKENS_FILE"] == "{{ tower.filename.device_tokens }}"
    assert "device_tokens" in example["inputs"]
    assert env_key("fgt-branch.1") == "FGT_BRANCH_1"


_ADHOC = re.compile(r"^(?P<host>\S+) \| SUCCESS => (?P<json>\{.*?^\})", re.MULTILINE | re.DOTALL)


def test_example_inventory_renders_valid_module_arguments(tmp_path):
    """inventory/ansible/: group and host vars render to arguments the loader accepts (certificates too)."""
    args = (
        '{{ {"url": fortiauto_url, "vdom": fortiauto_vdom | default(None), "timeout": fortiauto_timeout,'
        ' "verify_tls": fortiauto_verify_tls, "mail_servers": fortiauto_mail_servers} }}'
    )
    command = [str(BIN / "ansible"), "-i", "inventory/ansible", "fortigates", "-m", "ansible.builtin.debug"]
    done = subprocess.run(
        [*command, "-a", f"msg={args}"],
        cwd=REPO,
        env=ansible_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rendered = {m["host"]: json.loads(m["json"])["msg"] for m in _ADHOC.finditer(done.stdout)}
    assert set(rendered) == {"fgt-branch-1", "fgt-branch-2", "fgt-edge-1"}
    # The token files are per site and not in the repository: stand in a token.
    devices = {
        host: resolve_device(params | {"device": host, "token": "example"}, cwd=tmp_path).device
        for host, params in rendered.items()
    }
    assert all(d.mail_servers[0].certificate.fingerprint_sha256 for d in devices.values())
    # ansible prints hosts in completion order: compare per host, not by position
    assert {host: d.mail_servers[0].fallback for host, d in devices.items()} == {
        "fgt-branch-1": ("certificate-inspection",),
        "fgt-branch-2": ("certificate-inspection",),
        "fgt-edge-1": (),
    }
    assert (devices["fgt-branch-2"].vdom, devices["fgt-edge-1"].vdom) == ("mail", "root")
