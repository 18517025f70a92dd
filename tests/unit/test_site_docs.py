"""The site-file reference and JSON Schema in docs/ are what the models generate, and they are right.

Regenerate with ``scripts/gen-docs`` when a model changes; a key without a description fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from pydantic import BaseModel

from fortiauto.site.models import Site
from fortiauto.site.schema import (
    DOCS,
    _example_text,
    _models,
    _nested,
    reference_markdown,
    schema_json,
    site_schema,
)

ROOT = Path(__file__).resolve().parents[2]
# Site files (a top-level version:), not the Ansible inventory-plugin file that points at one.
EXAMPLES = sorted(
    path
    for path in (ROOT / "inventory" / "examples").glob("*.yml")
    if any(line.startswith("version:") for line in path.read_text().splitlines())
)


class EditorYaml(yaml.SafeLoader):
    """YAML as an editor's schema check sees it: timestamps stay text (JSON has no dates)."""


EditorYaml.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if not tag.endswith(":timestamp")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def as_editor_sees(text: str) -> Any:
    return yaml.load(text, Loader=EditorYaml)


SCHEMA_COMMENT = "# yaml-language-server: $schema=../../docs/site.schema.json"
STALE = "out of date: run scripts/gen-docs and commit docs/"


def test_the_json_schema_in_docs_is_current():
    assert (DOCS / "site.schema.json").read_text(encoding="utf-8") == schema_json(), STALE


def test_the_reference_in_docs_is_current():
    assert (DOCS / "site-reference.md").read_text(encoding="utf-8") == reference_markdown(_example_text()), (
        STALE
    )


def user_fields() -> list[tuple[str, str, Any]]:
    fields = []
    for name, model in _models(Site).items():
        hidden: frozenset[str] = getattr(model, "LOADER_FIELDS", frozenset())
        fields += [(name, key, info) for key, info in model.model_fields.items() if key not in hidden]
    return fields


@pytest.mark.parametrize(
    ("model", "key", "info"), user_fields(), ids=[f"{m}.{k}" for m, k, _ in user_fields()]
)
def test_every_key_has_a_description_and_required_keys_an_example(model, key, info):
    assert info.description, f"{model}.{key}: add Field(description=...) so the reference explains it"
    if info.is_required() and not _nested(info.annotation):  # a mapping is documented by its own section
        assert info.examples, f"{model}.{key}: a required key needs Field(examples=[...])"


@pytest.mark.parametrize(
    "key", ["timeout", "retries", "retry_delay", "allow_insecure_http", "allow_fortimanager_managed"]
)
def test_the_reference_documents_the_keys_that_were_only_in_the_source(key):
    assert f"| `{key}` |" in reference_markdown()


def test_every_section_of_the_reference_is_linked_and_every_model_has_one():
    text = reference_markdown()
    headings = {line[3:] for line in text.splitlines() if line.startswith("## ")}
    models = {m for m in _models(Site) if issubclass(_models(Site)[m], BaseModel)}
    assert len(headings) >= len(models)  # one per model, plus defaults and the example
    for target in {part.split("](#", 1)[1].split(")", 1)[0] for part in text.split("mapping: [")[1:]}:
        assert any(target == "".join(c for c in h.lower() if c.isalnum() or c in "-_") for h in headings), (
            target
        )


# ---------------------------------------------------------------- the schema is right, not only current


def validator() -> Draft202012Validator:
    schema = site_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.stem for e in EXAMPLES])
def test_the_shipped_examples_point_at_the_schema_and_pass_it(example):
    text = example.read_text()
    assert text.splitlines()[0] == SCHEMA_COMMENT
    assert (example.parent / SCHEMA_COMMENT.split("=", 1)[1]).resolve() == DOCS / "site.schema.json"
    errors = list(validator().iter_errors(as_editor_sees(text)))
    assert errors == [], [e.message for e in errors]


@pytest.mark.parametrize(
    ("edit", "path"),
    [
        (lambda d: d.update(devics=[]), []),
        (lambda d: d["devices"][0].update(verify_ssl=True), ["devices", 0]),
        (lambda d: d["devices"][0]["mail_servers"][0].update(emailfilter_profile="m" * 80), None),
        (lambda d: d["devices"][0]["mail_servers"][0]["probe"].update(mode="startls"), None),
        (lambda d: d["devices"][0]["mail_servers"][0]["probe"].update(port=70000), None),
        (lambda d: d["devices"][0]["mail_servers"][0]["certificate"].update(fingerprint_sha256="x"), None),
        (lambda d: d.update(defaults={"probe": {"host": "x"}}), None),
        (lambda d: d["devices"][0].update(vdom="mail dmz"), None),
    ],
)
def test_the_schema_flags_what_the_loader_refuses(edit, path):
    data = as_editor_sees((ROOT / "inventory" / "examples" / "single-device.yml").read_text())
    edit(data)
    errors = list(validator().iter_errors(data))
    assert errors
    if path is not None:
        assert [list(e.absolute_path) for e in errors] == [path]


def test_defaults_and_imap_confirmers_validate_in_the_files_shape():
    data = as_editor_sees((ROOT / "inventory" / "examples" / "fleet.yml").read_text())
    data["defaults"]["probe"] = {"retries": 2, "ehlo": "probe.example.test"}
    probe = data["devices"][0]["mail_servers"][0]["probe"]
    probe["confirm_delivery"] = {
        "imap": {"url": "imaps://mail.example.test", "username": "u", "password": "p"}
    }
    assert list(validator().iter_errors(data)) == []


def test_fortiauto_schema_prints_the_schema():
    done = subprocess.run(
        [sys.executable, "-m", "fortiauto", "schema"], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(done.stdout) == site_schema()
