"""One mock FortiGate's configuration: every CMDB object per vdom (and the global ones), with a revision.

The REST handlers (``cmdb.py``) turn requests into calls here and shape the answers;
this module owns the data and its rules: the next free ``policyid``, duplicates (-5),
references to missing objects (-651) and deletes of referenced objects (-23), read-only
built-ins, policy moves, child-table edits, and an honest ``changed`` flag so a write
that changes nothing leaves the revision alone (Ansible decides ``changed`` from it).
``dump()`` is the canonical, byte-stable JSON of everything (secrets masked) that the
control API serves; ``load()`` is its inverse for dumps taken with secrets.
"""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from fortiauto_lab.fields import NULL_UUID, CmdbError, Field, ObjectSpec, iter_refs, mask_secret, table_row
from fortiauto_lab.rules import check_write
from fortiauto_lab.schema import Schema

__all__ = ["ConfigStore"]

Table = dict[Any, dict[str, Any]]  # mkey -> object, in evaluation order


class ConfigStore:
    """The CMDB of one device: global objects plus one namespace per vdom."""

    def __init__(self, schema: Schema, vdoms: Iterable[str], *, uuid_seed: str) -> None:
        self.schema = schema
        self.vdoms = tuple(vdoms)
        self._uuid_seed = uuid_seed
        self._global: dict[str, Any] = {}
        self._vdom_data: dict[str, dict[str, Any]] = {v: {} for v in self.vdoms}
        for spec in schema.objects.values():
            for scope in self._scopes(spec):
                scope[spec.path] = {} if spec.category == "table" else spec.fresh()
        self._counter = 0

    # --- revision ----------------------------------------------------------------------

    @property
    def revision(self) -> str:
        """The 32-hex revision FortiOS reports; it moves only when a write changes something."""
        text = f"{self._uuid_seed}:{self._counter}"
        return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()

    def _bump(self, changed: bool) -> bool:
        if changed:
            self._counter += 1
        return changed

    # --- lookup ------------------------------------------------------------------------

    def _scopes(self, spec: ObjectSpec) -> list[dict[str, Any]]:
        return [self._global] if spec.scope == "global" else list(self._vdom_data.values())

    def check_vdom(self, vdom: str) -> None:
        if vdom not in self._vdom_data:
            raise KeyError(vdom)

    def _holder(self, vdom: str, spec: ObjectSpec) -> Any:
        if spec.scope == "global":
            return self._global[spec.path]
        return self._vdom_data[vdom][spec.path]

    def table(self, vdom: str, path: str) -> Table:
        spec = self.schema.spec(path)
        if spec.category != "table":
            raise CmdbError(405, None)
        table: Table = self._holder(vdom, spec)
        return table

    def members(self, vdom: str, path: str) -> list[dict[str, Any]]:
        """Every member of a table, in order (stored form; render before answering)."""
        return list(self.table(vdom, path).values())

    def get(self, vdom: str, path: str, mkey: Any) -> dict[str, Any]:
        try:
            return self.table(vdom, path)[mkey]
        except KeyError:
            raise CmdbError.not_found() from None

    def exists(self, vdom: str, path: str, mkey: Any) -> bool:
        return mkey in self.table(vdom, path)

    def singleton(self, vdom: str, path: str) -> dict[str, Any]:
        spec = self.schema.spec(path)
        if spec.category != "complex":
            raise CmdbError(405, None)
        obj: dict[str, Any] = self._holder(vdom, spec)
        return obj

    # --- references --------------------------------------------------------------------

    def _check_refs(self, vdom: str, spec: ObjectSpec, obj: Mapping[str, Any]) -> None:
        for ref_field, name in iter_refs(spec.fields, obj):
            if name in ref_field.specials or any(self.exists(vdom, t, name) for t in ref_field.refs):
                continue
            raise CmdbError.invalid(f"entry not found in datasource\n\nvalue parse error before '{name}'")

    def ref_count(self, vdom: str, path: str, mkey: Any) -> int:
        """How many objects refer to ``path``/``mkey`` (FortiOS ``q_ref``)."""
        target = self.schema.spec(path)
        name = str(mkey)
        count = 0
        for spec in self.schema.objects.values():
            if spec.scope == "global":
                # Global objects live once; count them with the management vdom only.
                scopes: tuple[str, ...] = (
                    (self.vdoms[0],) if target.scope == "global" or vdom == self.vdoms[0] else ()
                )
            else:
                scopes = self.vdoms if target.scope == "global" else (vdom,)
            for scope in scopes:
                count += sum(self._refs_in(scope, spec, path, name))
        return count

    def _refs_in(self, vdom: str, spec: ObjectSpec, path: str, name: str) -> Iterable[int]:
        objects = (
            self.members(vdom, spec.path) if spec.category == "table" else [self.singleton(vdom, spec.path)]
        )
        for obj in objects:
            hits = sum(1 for f, ref in iter_refs(spec.fields, obj) if ref == name and path in f.refs)
            yield 1 if hits else 0

    # --- writes ------------------------------------------------------------------------

    def _uuid(self, vdom: str, spec: ObjectSpec, mkey: Any) -> str:
        name = f"{self._uuid_seed}/{vdom}/{spec.path}/{mkey}"
        return str(uuid.uuid5(uuid.NAMESPACE_URL, name))

    def _finish(self, vdom: str, spec: ObjectSpec, obj: dict[str, Any]) -> dict[str, Any]:
        if spec.mkey and obj.get("uuid") == NULL_UUID:
            # Deterministic per device and key, so a delete+recreate dumps the same bytes.
            obj["uuid"] = self._uuid(vdom, spec, obj[spec.mkey])
        self._check_refs(vdom, spec, obj)
        return obj

    def _writable(self, spec: ObjectSpec, mkey: Any = None) -> None:
        if not spec.writable:
            raise CmdbError.read_only(spec.path)
        if mkey is not None and mkey in spec.read_only:
            raise CmdbError.read_only(f"{spec.path} {mkey}")

    def create(self, vdom: str, path: str, body: Mapping[str, Any]) -> tuple[Any, bool]:
        """POST: add a member; an integer key of 0/absent gets the next free id."""
        spec = self.schema.spec(path)
        if spec.category != "table" or spec.mkey is None:
            raise CmdbError(405, None)
        self._writable(spec)
        table = self.table(vdom, path)
        obj = spec.apply(None, body)
        if spec.mkey_int and not obj.get(spec.mkey):
            obj[spec.mkey] = max((int(k) for k in table), default=0) + 1
        mkey = obj[spec.mkey]
        if mkey in table:
            raise CmdbError.duplicate()
        obj = self._finish(vdom, spec, obj)
        check_write(self, vdom, spec, body, obj)
        table[mkey] = obj
        return mkey, self._bump(True)

    def update(self, vdom: str, path: str, mkey: Any, body: Mapping[str, Any]) -> tuple[Any, bool]:
        """PUT on a member: merge ``body``; a different key in the body renames the member."""
        spec = self.schema.spec(path)
        table = self.table(vdom, path)
        current = self.get(vdom, path, mkey)
        self._writable(spec, mkey)
        obj = self._finish(vdom, spec, spec.apply(copy.deepcopy(current), body))
        assert spec.mkey is not None
        if spec.mkey_int and not obj[spec.mkey]:
            obj[spec.mkey] = mkey  # PUT bodies often carry policyid 0: not a rename
        new_key = obj[spec.mkey]
        check_write(self, vdom, spec, body, obj)
        if obj == current:
            return mkey, False
        if new_key != mkey:
            self._rename(vdom, spec, table, mkey, new_key)
        table[new_key] = obj
        return new_key, self._bump(True)

    def _rename(self, vdom: str, spec: ObjectSpec, table: Table, old: Any, new: Any) -> None:
        if new in table:
            raise CmdbError.duplicate()
        in_use = self.ref_count(vdom, spec.path, old)
        if in_use:
            raise CmdbError.in_use(in_use)
        rebuilt = {(new if k == old else k): v for k, v in table.items()}
        table.clear()
        table.update(rebuilt)

    def update_singleton(self, vdom: str, path: str, body: Mapping[str, Any]) -> bool:
        spec = self.schema.spec(path)
        current = self.singleton(vdom, path)
        self._writable(spec)
        obj = self._finish(vdom, spec, spec.apply(copy.deepcopy(current), body))
        check_write(self, vdom, spec, body, obj)
        if obj == current:
            return False
        current.clear()
        current.update(obj)
        return self._bump(True)

    def delete(self, vdom: str, path: str, mkey: Any) -> bool:
        spec = self.schema.spec(path)
        table = self.table(vdom, path)
        self.get(vdom, path, mkey)
        self._writable(spec, mkey)
        if mkey in spec.undeletable:
            raise CmdbError.read_only(f"{spec.path} {mkey}")
        in_use = self.ref_count(vdom, path, mkey)
        if in_use:
            raise CmdbError.in_use(in_use)
        del table[mkey]
        return self._bump(True)

    def move(self, vdom: str, path: str, mkey: Any, *, before: Any = None, after: Any = None) -> bool:
        """``action=move``: put ``mkey`` right before or after another member."""
        spec = self.schema.spec(path)
        table = self.table(vdom, path)
        self._writable(spec)
        anchor = before if before is not None else after
        if anchor is None:
            raise CmdbError.invalid("move needs 'before' or 'after'")
        anchor = spec.parse_mkey(str(anchor))
        obj = self.get(vdom, path, mkey)
        self.get(vdom, path, anchor)
        if anchor == mkey:
            return False
        keys = [k for k in table if k != mkey]
        keys.insert(keys.index(anchor) + (0 if before is not None else 1), mkey)
        if keys == list(table):
            return False
        rebuilt = {k: (obj if k == mkey else table[k]) for k in keys}
        table.clear()
        table.update(rebuilt)
        return self._bump(True)

    def clone(self, vdom: str, path: str, mkey: Any, new_key: str) -> tuple[Any, bool]:
        """``action=clone&nkey=``: a copy of ``mkey`` under a new key."""
        spec = self.schema.spec(path)
        assert spec.mkey is not None
        body = {k: v for k, v in copy.deepcopy(self.get(vdom, path, mkey)).items() if k != "uuid"}
        body[spec.mkey] = spec.parse_mkey(new_key)
        return self.create(vdom, path, body)

    # --- child tables ------------------------------------------------------------------

    def child_field(self, path: str, child: str) -> Field:
        spec = self.schema.spec(path)
        found = spec.fields.get(child)
        if found is None or found.kind not in ("names", "table"):
            raise CmdbError.not_found()
        return found

    def child_key(self, path: str, child: str, text: str) -> Any:
        found = self.child_field(path, child)
        if found.kind == "table" and found.mkey_int:
            try:
                return int(text)
            except ValueError:
                raise CmdbError.not_found() from None
        return text

    def child_rows(self, vdom: str, path: str, mkey: Any, child: str) -> list[dict[str, Any]]:
        self.child_field(path, child)
        rows: list[dict[str, Any]] = self.get(vdom, path, mkey).get(child, [])
        return rows

    def child_get(self, vdom: str, path: str, mkey: Any, child: str, key: Any) -> dict[str, Any]:
        found = self.child_field(path, child)
        for row in self.child_rows(vdom, path, mkey, child):
            if row[found.mkey] == key:
                return row
        raise CmdbError.not_found()

    def child_create(self, vdom: str, path: str, mkey: Any, child: str, body: Mapping[str, Any]) -> Any:
        found = self.child_field(path, child)
        rows = copy.deepcopy(self.child_rows(vdom, path, mkey, child))
        if found.kind == "names":
            entry = {"name": body.get("name")}
            if any(r["name"] == entry["name"] for r in rows):
                raise CmdbError.duplicate()
            rows.append(entry)
        else:
            entry = table_row(found, child, body, rows)
            rows.append(entry)
        self.update(vdom, path, mkey, {child: rows})
        return entry[found.mkey]

    def child_update(
        self, vdom: str, path: str, mkey: Any, child: str, key: Any, *, body: Mapping[str, Any]
    ) -> bool:
        found = self.child_field(path, child)
        self.child_get(vdom, path, mkey, child, key)
        rows = [
            ({**r, **body} if r[found.mkey] == key else r)
            for r in copy.deepcopy(self.child_rows(vdom, path, mkey, child))
        ]
        _, changed = self.update(vdom, path, mkey, {child: rows})
        return changed

    def child_delete(self, vdom: str, path: str, mkey: Any, child: str, key: Any) -> bool:
        found = self.child_field(path, child)
        self.child_get(vdom, path, mkey, child, key)
        rows = [r for r in self.child_rows(vdom, path, mkey, child) if r[found.mkey] != key]
        _, changed = self.update(vdom, path, mkey, {child: rows})
        return changed

    # --- seeding -----------------------------------------------------------------------

    def seed(self, vdom: str, path: str, obj: Mapping[str, Any]) -> None:
        """Install a built-in or initial object, bypassing read-only rules (used by ``seed.py``)."""
        spec = self.schema.spec(path)
        full = spec.apply(None if spec.category == "table" else self.singleton(vdom, path), obj)
        full = self._finish(vdom, spec, full)
        if spec.category == "table":
            assert spec.mkey is not None
            self.table(vdom, path)[full[spec.mkey]] = full
        else:
            holder = self.singleton(vdom, path)
            holder.clear()
            holder.update(full)

    def copy(self, *, uuid_seed: str) -> ConfigStore:
        """An independent store with the same objects (a device's own copy of the seed).

        Strings are shared with the original (they are immutable), which keeps a fleet of
        hundreds of devices small; object uuids are re-derived for the new device.
        """
        twin = ConfigStore.__new__(ConfigStore)
        twin.schema = self.schema
        twin.vdoms = self.vdoms
        twin._uuid_seed = uuid_seed
        twin._counter = 0
        twin._global = copy.deepcopy(self._global)
        twin._vdom_data = copy.deepcopy(self._vdom_data)
        for scope_name, scope in [(self.vdoms[0], twin._global), *twin._vdom_data.items()]:
            for path, holder in scope.items():
                spec = self.schema.spec(path)
                if spec.category == "table" and "uuid" in spec.fields:
                    for key, obj in holder.items():
                        obj["uuid"] = twin._uuid(scope_name, spec, key)
        return twin

    # --- canonical dump ----------------------------------------------------------------

    def _snapshot(self, *, reveal_secrets: bool) -> dict[str, Any]:
        def scope_data(data: dict[str, Any]) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for path, holder in data.items():
                spec = self.schema.spec(path)
                objs = list(holder.values()) if spec.category == "table" else holder
                out[path] = objs if reveal_secrets else _mask(spec.fields, objs)
            return out

        return {
            "global": scope_data(self._global),
            "vdoms": {v: scope_data(d) for v, d in self._vdom_data.items()},
        }

    def dump(self, *, reveal_secrets: bool = False) -> bytes:
        """Canonical JSON of the whole configuration: sorted keys, table order kept, byte-stable."""
        snap = self._snapshot(reveal_secrets=reveal_secrets)
        return json.dumps(snap, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def load(self, data: bytes) -> None:
        """Replace everything with a dump taken with ``reveal_secrets=True``."""
        snap = json.loads(data)
        for path, value in snap["global"].items():
            self._global[path] = self._restore(path, value)
        for vdom, scope in snap["vdoms"].items():
            self._vdom_data[vdom] = {p: self._restore(p, v) for p, v in scope.items()}
        self._bump(True)

    def _restore(self, path: str, value: Any) -> Any:
        spec = self.schema.spec(path)
        if spec.category == "complex":
            return value
        assert spec.mkey is not None
        return {obj[spec.mkey]: obj for obj in value}


def _mask(fields: Mapping[str, Field], value: Any) -> Any:
    if isinstance(value, list):
        return [_mask(fields, v) for v in value]
    out: dict[str, Any] = {}
    for attr, item in value.items():
        spec = fields.get(attr)
        if spec is not None and spec.kind == "secret":
            out[attr] = mask_secret(item)
        elif spec is not None and spec.kind == "container":
            out[attr] = _mask(spec.fields, item)
        elif spec is not None and spec.kind == "table":
            out[attr] = [_mask(spec.fields, row) for row in item]
        else:
            out[attr] = item
    return out
