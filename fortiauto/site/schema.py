"""The site file's JSON Schema and reference page, generated from the models (never kept by hand).

First stage of the pipeline (site -> plan -> apply -> verify -> commit | rollback -> report).
``site_schema()`` is the models' JSON Schema reshaped into the file's own shape: the loader's
fields left out, ``defaults:`` added, ``confirm_delivery: {imap: ...}`` as written. Editors use
it through the ``# yaml-language-server: $schema=...`` comment; ``fortiauto schema`` prints it.
``reference_markdown()`` renders the same schema as ``docs/site-reference.md``: every key, its
type, default, description and an example.

``python -m fortiauto.site.schema --write`` (what ``scripts/gen-docs`` runs) rewrites both
files in ``docs/``; ``tests/unit/test_site_docs.py`` fails when either is out of date.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel

from fortiauto.site import loader
from fortiauto.site.files import REFERENCED_FILE_CAP, SITE_FILE_CAP, size_text
from fortiauto.site.models import Site
from fortiauto.site.yamldata import ALIAS_VALUES, MAX_DEPTH, MAX_VALUES

__all__ = ["DOCS", "reference_markdown", "schema_json", "site_schema", "write_docs"]

DOCS = Path(__file__).resolve().parents[2] / "docs"
SCHEMA_FILE = "site.schema.json"
REFERENCE_FILE = "site-reference.md"
_DRAFT = "https://json-schema.org/draft/2020-12/schema"
_PIN_EXAMPLE = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
# Keys of defaults.probe that only make sense per mail server (the loader refuses them there).
_PER_SERVER_PROBE_KEYS = ("host", "server_name")


def _models(root: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """Every model reachable from ``root`` by its class name (the schema's ``$defs`` names)."""
    found: dict[str, type[BaseModel]] = {}
    todo = [root]
    while todo:
        model = todo.pop()
        if model.__name__ in found:
            continue
        found[model.__name__] = model
        for info in model.model_fields.values():
            todo.extend(_nested(info.annotation))
    return found


def _nested(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _nested(arg)]


def _drop_titles(node: Any) -> None:
    """pydantic titles every property after its name ("Retry Delay"): noise in an editor's hover."""
    if isinstance(node, dict):
        properties = node.get("properties")
        if isinstance(properties, dict):
            for prop in properties.values():
                if isinstance(prop, dict):
                    prop.pop("title", None)
        for value in node.values():
            _drop_titles(value)
    elif isinstance(node, list):
        for value in node:
            _drop_titles(value)


def _hide_loader_fields(defs: dict[str, Any], models: dict[str, type[BaseModel]]) -> None:
    for name, model in models.items():
        hidden: frozenset[str] = getattr(model, "LOADER_FIELDS", frozenset())
        target = defs.get(name)
        if not hidden or target is None:
            continue
        for field_name in hidden:
            target["properties"].pop(field_name, None)
        if "required" in target:
            target["required"] = [r for r in target["required"] if r not in hidden]


def _file_shapes(schema: dict[str, Any]) -> None:
    """Where the file's shape differs from the model's (validators reshape these on load)."""
    defs = schema["$defs"]
    verify = defs["Device"]["properties"]["verify_tls"]
    verify["anyOf"] = [{"type": "boolean"}, {"type": "string", "minLength": 1}]
    verify["examples"] = ["certs/ca.pem", _PIN_EXAMPLE]
    confirm = defs["ProbeSpec"]["properties"].get("confirm_delivery")
    if confirm is not None:
        confirm["anyOf"] = [
            {"type": "string", "minLength": 1},
            {
                "type": "object",
                "properties": {"imap": {"$ref": "#/$defs/ImapConfirm"}},
                "required": ["imap"],
                "additionalProperties": False,
            },
            {"type": "null"},
        ]
        confirm["examples"] = ["lab", {"imap": {"url": "imaps://mail.example.test", "username": "probe"}}]


def _defaults(schema: dict[str, Any]) -> dict[str, Any]:
    """``defaults:``: device keys every device inherits, and ``probe:`` settings every mail server does."""
    defs = schema["$defs"]
    device = defs["Device"]["properties"]
    keys = [k for k in loader._DEFAULT_KEYS if k in device]
    properties: dict[str, Any] = {k: copy.deepcopy(device[k]) for k in keys}
    if "probe" in loader._DEFAULT_KEYS:
        probe = copy.deepcopy(defs["ProbeSpec"])
        for key in _PER_SERVER_PROBE_KEYS:
            probe["properties"].pop(key, None)
        probe.pop("required", None)
        probe["title"] = "ProbeDefaults"
        probe["description"] = (
            "Probe settings every mail server inherits; a key its own probe sets wins "
            f"({', '.join(_PER_SERVER_PROBE_KEYS)} are set per mail server only)."
        )
        defs["ProbeDefaults"] = probe
        properties["probe"] = {
            "$ref": "#/$defs/ProbeDefaults",
            "description": "Probe settings every mail server inherits.",
        }
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "description": (
            "Device settings every device inherits unless it sets its own; a device that names any "
            "of token, username or password inherits none of the three."
        ),
    }


def site_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a site file as written."""
    schema: dict[str, Any] = Site.model_json_schema(mode="validation")
    models = _models(Site)
    defs = schema.setdefault("$defs", {})
    # The top level is inlined by pydantic; hide its loader fields like every other model's.
    defs_and_top = {**defs, "Site": schema}
    _hide_loader_fields(defs_and_top, models)
    _file_shapes(schema)
    schema["properties"]["defaults"] = _defaults(schema)
    _drop_titles(schema)
    ordered = {
        "$schema": _DRAFT,
        "title": "fortiauto site file",
        "description": (
            "A site: the FortiGates to change and each inbound mail server behind them. "
            "Any text value may be ${env:NAME} or ${file:PATH}; paths are relative to the site file."
        ),
    }
    ordered.update({k: v for k, v in schema.items() if k not in ("title", "description")})
    return ordered


def schema_json() -> str:
    """``site_schema()`` as the text of ``docs/site.schema.json``."""
    return json.dumps(site_schema(), indent=2, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------- the reference page


def _ref_name(node: dict[str, Any]) -> str | None:
    ref = node.get("$ref")
    return ref.rsplit("/", 1)[1] if isinstance(ref, str) else None


def _bounds(node: dict[str, Any]) -> str:
    parts = []
    if "minimum" in node:
        parts.append(f">= {_number(node['minimum'])}")
    if "exclusiveMinimum" in node:
        parts.append(f"> {_number(node['exclusiveMinimum'])}")
    if "maximum" in node:
        parts.append(f"<= {_number(node['maximum'])}")
    if "exclusiveMaximum" in node:
        parts.append(f"< {_number(node['exclusiveMaximum'])}")
    if "maxLength" in node:
        parts.append(f"at most {node['maxLength']} characters")
    return f" ({', '.join(parts)})" if parts else ""


def _number(value: object) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _type_text(node: dict[str, Any], sections: dict[str, str]) -> str:  # noqa: PLR0911 - one text per JSON Schema node form, first match wins
    name = _ref_name(node)
    if name is not None:
        return f"mapping: [{sections[name]}](#{_anchor(sections[name])})"
    for union in ("anyOf", "oneOf"):
        if union in node:
            members = [m for m in node[union] if m.get("type") != "null"]
            text = " or ".join(dict.fromkeys(_type_text(m, sections) for m in members))
            return text + _bounds(node)
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    if "enum" in node:
        return "one of " + ", ".join(f"`{v}`" for v in node["enum"])
    kind = node.get("type")
    if kind == "array":
        items = node.get("items", {})
        return f"list of {_type_text(items, sections)}" + _bounds(node)
    if kind == "string":
        label = {"path": "path", "password": "secret text", "date-time": "date and time with zone"}.get(
            node.get("format", ""), "text"
        )
        return label + _bounds(node)
    labels = {"integer": "whole number", "number": "number", "boolean": "true/false", "object": "mapping"}
    return labels.get(str(kind), str(kind)) + _bounds(node)


def _inline(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return "`" + text.replace("|", "\\|") + "`"


def _anchor(title: str) -> str:
    return "".join(c for c in title.lower().replace(" ", "-") if c.isalnum() or c in "-_")


def _sections(schema: dict[str, Any]) -> dict[str, str]:
    """Each ``$defs`` name -> the key path it appears at first (``devices[].mail_servers[]``)."""
    paths: dict[str, str] = {"Site": "top level"}
    # defaults: last, so that a model both use is named where it is used (devices[]...), not there.
    top = {k: v for k, v in schema["properties"].items() if k != "defaults"}
    later = {"defaults": schema["properties"].get("defaults", {})}
    for start in (top, later):
        todo: list[tuple[dict[str, Any], str]] = [({"properties": start}, "")]
        while todo:
            node, prefix = todo.pop(0)
            for key, prop in node.get("properties", {}).items():
                path = f"{prefix}{key}"
                if "properties" in prop:  # an inline mapping (defaults)
                    todo.append((prop, f"{path}."))
                    continue
                for found, inner in _refs_in(prop):
                    if found not in paths:
                        paths[found] = (f"{path}[]" if prop.get("type") == "array" else path) + inner
                        todo.append((schema["$defs"][found], f"{paths[found]}."))
    return paths


def _refs_in(node: Any, inner: str = "") -> list[tuple[str, str]]:
    """Models referenced under ``node``, with the keys of inline mappings on the way (``.imap``)."""
    if isinstance(node, list):
        return [found for value in node for found in _refs_in(value, inner)]
    if not isinstance(node, dict):
        return []
    name = _ref_name(node)
    found = [(name, inner)] if name else []
    for key, value in node.items():
        if key == "properties" and isinstance(value, dict):
            found += [f for prop, sub in value.items() for f in _refs_in(sub, f"{inner}.{prop}")]
        else:
            found += _refs_in(value, inner)
    return found


def _table(node: dict[str, Any], sections: dict[str, str]) -> list[str]:
    required = set(node.get("required", []))
    rows = ["| Key | Type | Default | Description | Example |", "|---|---|---|---|---|"]
    for key, prop in node.get("properties", {}).items():
        default = "required" if key in required else _inline(prop["default"]) if "default" in prop else "-"
        examples = prop.get("examples") or [prop.get("default")]
        example = _inline(examples[0]) if examples[0] not in (None, [], {}, "") else "-"
        description = str(prop.get("description", "")).replace("|", "\\|")
        rows.append(f"| `{key}` | {_type_text(prop, sections)} | {default} | {description} | {example} |")
    return rows


_INTRO = """\
# Site file reference

Generated from `fortiauto/site/models.py` by `scripts/gen-docs`; do not edit by hand (a test
fails when this page or `docs/site.schema.json` is out of date).

A site file is one YAML document (YAML 1.2: `yes`, `on` and `010` stay text and ten). Check one
with `fortiauto validate SITE`; it contacts nothing and reports every problem as
`FILE:LINE: KEY: reason` (exit 2). Editors validate and complete it with the JSON Schema
`docs/site.schema.json` (`fortiauto schema` prints it); put this first line in the file, with
the path relative to it:

```yaml
# yaml-language-server: $schema=../../docs/site.schema.json
```

- **Secrets** (tokens, passwords, passphrases) and any other text may be written as
  `${{env:NAME}}` (an environment variable) or `${{file:PATH}}` (a file's text without its one
  trailing newline; anything more, such as a blank line, is refused where it cannot be right).
- **Paths** are relative to the site file's folder.
- **Names** that reach FortiOS are sent exactly as written (quote them in YAML when they look like
  YAML: `"mail: inbound"`, `"null"`); FortiOS's limits are checked on load: no `"` `'` `<` `>` or
  control characters, 35 characters for profile, policy and certificate names, 79 for a VIP,
  VDOM names of letters, digits, `-` and `_` (at most 31). Device and mail-server names use
  letters, digits and `. _ : -`.
- **Limits**: a site file is at most {site_cap} and {values:,} values (keys, list items and
  scalars: about 6,000 devices), a file it names at most {file_cap}; aliases may bring in at most
  {aliases:,} values, and nesting is at most {depth} levels deep.
- **Durations** are seconds, finite and bounded (`.inf` and `.nan` are refused).
"""


def reference_markdown(example: str | None = None) -> str:
    """``docs/site-reference.md``: one table per mapping of the file, in the order they nest."""
    schema = site_schema()
    sections = _sections(schema)
    lines = [
        _INTRO.format(
            site_cap=size_text(SITE_FILE_CAP),
            file_cap=size_text(REFERENCED_FILE_CAP),
            aliases=ALIAS_VALUES,
            depth=MAX_DEPTH,
            values=MAX_VALUES,
        )
    ]
    if example:
        lines += ["## A complete example", "", "```yaml", example.rstrip("\n"), "```", ""]
    top = {**schema, "properties": {**schema["properties"]}}
    defaults = top["properties"]["defaults"]
    sections_in_order = [("Site", top, "top level"), ("defaults", defaults, "defaults")]
    sections_in_order += [
        (name, schema["$defs"][name], path) for name, path in sections.items() if name != "Site"
    ]
    for name, node, path in sections_in_order:
        lines.append(f"## {path}")
        lines.append("")
        description = node.get("description") or ""
        if name not in ("Site", "defaults") and description:
            lines += [" ".join(description.split()), ""]
        elif name == "defaults":
            lines += [str(defaults["description"]), ""]
        lines += _table(node, sections)
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _example_text() -> str | None:
    example = DOCS.parent / "inventory" / "examples" / "single-device.yml"
    return example.read_text(encoding="utf-8") if example.is_file() else None


def write_docs(folder: Path = DOCS) -> list[Path]:
    """Write ``site.schema.json`` and ``site-reference.md`` into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    schema_path, reference_path = folder / SCHEMA_FILE, folder / REFERENCE_FILE
    schema_path.write_text(schema_json(), encoding="utf-8")
    reference_path.write_text(reference_markdown(_example_text()), encoding="utf-8")
    return [schema_path, reference_path]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The site file's JSON Schema and reference page.")
    parser.add_argument("--write", action="store_true", help=f"rewrite {SCHEMA_FILE} and {REFERENCE_FILE}")
    parser.add_argument("--docs", type=Path, default=DOCS, help="the docs folder (default: the repo's)")
    args = parser.parse_args(argv)
    if args.write:
        for path in write_docs(args.docs):
            sys.stdout.write(f"wrote {path}\n")
    else:
        sys.stdout.write(schema_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
