"""``/api/v2/cmdb/...``: the lab's CMDB endpoints, shaped exactly as FortiOS answers them.

``app.py`` routes here with the request's raw path segments (so ``%2F`` inside an mkey
survives routing). This module resolves the vdom(s), maps URL + method + ``action`` to a
``ConfigStore`` call, and wraps the outcome in the FortiOS envelope: tables answer
lists (a member GET is a list of one), complex objects answer an object, writes carry
``mkey``, ``revision_changed`` and ``old_revision``, errors carry FortiOS's HTTP status,
``error`` code and ``cli_error``. ``vdom=a,b`` / ``vdom=*`` / ``global=1`` GETs answer a
JSON array of envelopes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from aiohttp import web
from multidict import MultiMapping

from fortiauto_lab.envelope import BodyError, Target, envelope, error_envelope, json_response, parse_body
from fortiauto_lab.fields import CmdbError, ObjectSpec
from fortiauto_lab.query import FilterError, apply_format, matches, page, parse_filters
from fortiauto_lab.schema import schema_json

if TYPE_CHECKING:
    from fortiauto_lab.device import LabDevice

__all__ = ["VdomError", "handle_cmdb", "resolve_vdoms"]

Query = MultiMapping[str]
_TRUE = ("1", "true", "yes")


class VdomError(Exception):
    """A vdom the device does not have (FortiOS answers 403: no access to it)."""

    def __init__(self, vdom: str) -> None:
        self.vdom = vdom
        super().__init__(vdom)


def resolve_vdoms(device: LabDevice, query: Query) -> tuple[list[str], bool]:
    """The vdoms a request addresses and whether the answer is an array of envelopes."""
    known = list(device.store.vdoms)
    if query.get("global", "").lower() in _TRUE:
        return known, True  # fortiosapi indexes [0] of the global answer
    raw = query.get("vdom", "")
    if raw == "*":
        return known, True
    names = [v for v in raw.split(",") if v] or [known[0]]
    for name in names:
        if name not in known:
            raise VdomError(name)
    return names, len(names) > 1


@dataclass(frozen=True)
class _Call:
    """One CMDB request, parsed: which object, which member and child, in which vdom."""

    device: LabDevice
    target: Target
    spec: ObjectSpec
    query: Query
    mkey: Any = None
    child: str | None = None
    child_key: Any = None

    @property
    def vdom(self) -> str:
        return self.target.vdom

    def ok(self, **fields: Any) -> tuple[int, dict[str, Any]]:
        return 200, envelope(self.device, self.target, **fields)

    def fail(self, exc: CmdbError, **fields: Any) -> tuple[int, dict[str, Any]]:
        body = error_envelope(
            self.device, self.target, exc.http_status, error=exc.error, cli_error=exc.cli_error, **fields
        )
        return exc.http_status, body


def _status_results(device: LabDevice) -> dict[str, Any]:
    return {
        "hostname": device.name,
        "serial": device.serial,
        "version": device.version.tag,
        "build": device.build,
        "model_name": device.model.name.split("-", 1)[0],
        "model": device.model.code,
    }


async def handle_cmdb(request: web.Request, device: LabDevice, segments: list[str]) -> web.Response:  # noqa: PLR0911 - each early answer is one of FortiOS's CMDB refusals, in FortiOS's order
    """Serve one ``/api/v2/cmdb/<path>/<name>[/<mkey>[/<child>[/<key>]]]`` request."""
    query = request.query
    method = request.method
    try:
        vdoms, multi = resolve_vdoms(device, query)
    except VdomError as exc:
        path, name = [*segments, "", ""][:2]
        target = Target(method, exc.vdom, path, name)
        return json_response(error_envelope(device, target, 403), 403)
    if len(segments) < 2:
        return _root(device, Target(method, vdoms[0], "", ""), query)
    target = Target(method, vdoms[0], segments[0], segments[1])
    if f"{segments[0]}/{segments[1]}" == "system/status":
        return _pseudo_status(device, target, vdoms, multi)
    try:
        spec = device.store.schema.spec(f"{segments[0]}/{segments[1]}")
        call = _parse(device, target, spec, query, segments[2:])
    except CmdbError as exc:
        return json_response(
            error_envelope(device, target, exc.http_status, error=exc.error), exc.http_status
        )
    if method == "GET":
        if multi:
            answers = [_get(replace(call, target=replace(target, vdom=v))) for v in vdoms]
            return json_response([body for _, body in answers])
        status, body = _get(call)
        return json_response(body, status)
    if multi and len(vdoms) > 1:
        return json_response(error_envelope(device, target, 400), 400)
    try:
        payload = parse_body(await request.read())
    except BodyError as exc:
        return json_response(error_envelope(device, target, exc.http_status), exc.http_status)
    status, body = _write(call, method, payload)
    return json_response(body, status)


def _parse(device: LabDevice, target: Target, spec: ObjectSpec, query: Query, rest: list[str]) -> _Call:
    rest = [r for r in rest if r != ""] if rest and rest[-1] == "" else rest
    if len(rest) > 3 or (rest and spec.category == "complex"):
        raise CmdbError.not_found()
    mkey = spec.parse_mkey(rest[0]) if rest else None
    child = rest[1] if len(rest) > 1 else None
    child_key = device.store.child_key(spec.path, child, rest[2]) if child and len(rest) > 2 else None
    if child:
        device.store.child_field(spec.path, child)
    return _Call(device, target, spec, query, mkey, child, child_key)


def _root(device: LabDevice, target: Target, query: Query) -> web.Response:
    if target.method != "GET" or query.get("action") != "schema":
        return json_response(error_envelope(device, target, 404, error=-3), 404)
    results = [{"path": s.prefix, "name": s.name} for s in device.store.schema.objects.values()]
    body = envelope(device, replace(target, action="schema"), results=results)
    return json_response(body)


def _pseudo_status(device: LabDevice, target: Target, vdoms: list[str], multi: bool) -> web.Response:
    # Not a real CMDB table: fortiosapi's token login reads version from it (an array for global=1).
    if target.method != "GET":
        return json_response(error_envelope(device, target, 405), 405)
    bodies = [
        envelope(
            device, replace(target, vdom=v), revision=device.store.revision, results=_status_results(device)
        )
        for v in vdoms
    ]
    return json_response(bodies if multi else bodies[0])


# --- reads --------------------------------------------------------------------------------


def _get(call: _Call) -> tuple[int, dict[str, Any]]:  # noqa: PLR0911 - one answer per GET form (table, member, schema, default), as FortiOS has them
    store = call.device.store
    action = call.query.get("action")
    try:
        if action == "schema":
            return call.ok(revision=store.revision, results=schema_json(call.spec))
        if action == "default":
            return call.ok(revision=store.revision, results=store.schema.render(call.spec, call.spec.fresh()))
        if call.spec.category == "complex":
            obj = store.singleton(call.vdom, call.spec.path)
            return call.ok(revision=store.revision, results=store.schema.render(call.spec, obj))
        if call.mkey is None:
            return call.ok(revision=store.revision, results=_collection(call), **_list_meta(call))
        if call.child is None:
            obj = _decorate(
                call, store.schema.render(call.spec, store.get(call.vdom, call.spec.path, call.mkey))
            )
            return call.ok(revision=store.revision, results=[obj], mkey=call.mkey)
        return call.ok(revision=store.revision, results=_child_rows(call), mkey=call.mkey)
    except CmdbError as exc:
        return call.fail(
            exc, revision=store.revision, **({"mkey": call.mkey} if call.mkey is not None else {})
        )
    except FilterError as exc:
        return call.fail(CmdbError(400, None, str(exc)), revision=store.revision)


def _collection(call: _Call) -> list[dict[str, Any]]:
    store = call.device.store
    filters = parse_filters(call.query.getall("filter", []))
    objs = [
        _decorate(call, store.schema.render(call.spec, o)) for o in store.members(call.vdom, call.spec.path)
    ]
    objs = [o for o in objs if matches(o, filters)]
    objs = page(objs, call.query.get("start"), call.query.get("count"))
    return [apply_format(o, call.query.get("format")) for o in objs]


def _list_meta(call: _Call) -> dict[str, Any]:
    # 7.x list answers carry these counters (third-party docs; harmless for older clients).
    if not call.device.version.has("rest.list-counters"):
        return {}
    total = len(call.device.store.members(call.vdom, call.spec.path))
    return {"size": total, "matched_count": total, "next_idx": total - 1}


def _child_rows(call: _Call) -> list[dict[str, Any]]:
    store = call.device.store
    assert call.child is not None
    found = store.child_field(call.spec.path, call.child)
    if call.child_key is not None:
        rows = [store.child_get(call.vdom, call.spec.path, call.mkey, call.child, call.child_key)]
    else:
        rows = store.child_rows(call.vdom, call.spec.path, call.mkey, call.child)
    rendered: list[dict[str, Any]] = store.schema.render_value(found, rows)
    return rendered


def _decorate(call: _Call, obj: dict[str, Any]) -> dict[str, Any]:
    """``with_meta`` and ``datasource`` additions to one rendered table member."""
    spec = call.spec
    assert spec.mkey is not None
    key = obj[spec.mkey]
    if call.query.get("datasource", "").lower() in _TRUE:
        _add_datasources(call, obj)
    if call.query.get("with_meta", "").lower() in _TRUE:
        obj |= {
            "q_ref": call.device.store.ref_count(call.vdom, spec.path, key),
            "q_static": key in spec.undeletable or key in spec.read_only,
            "q_no_rename": key in spec.read_only,
            "q_no_edit": key in spec.read_only,
            "q_global_entry": False,
            "q_type": spec.q_type,
            "q_path": spec.prefix,
            "q_name": spec.name,
            "q_mkey_type": "integer" if spec.mkey_int else "string",
        }
    return obj


def _add_datasources(call: _Call, obj: dict[str, Any]) -> None:
    store = call.device.store
    for attr, field_spec in call.spec.fields.items():
        if field_spec.kind != "names" or not field_spec.refs:
            continue
        for entry in obj.get(attr, []):
            for table in field_spec.refs:
                if store.exists(call.vdom, table, entry["name"]):
                    entry["datasource"] = table.replace("/", ".")
                    break


# --- writes -------------------------------------------------------------------------------


def _write(call: _Call, method: str, body: Any) -> tuple[int, dict[str, Any]]:
    store = call.device.store
    old = store.revision
    action = call.query.get("action") or (body.get("action") if isinstance(body, Mapping) else None)
    if action in ("move", "clone"):
        call = replace(call, target=replace(call.target, action=action))
    try:
        mkey, changed = _dispatch_write(call, method, body, action)
    except CmdbError as exc:
        extra = {"mkey": call.mkey} if call.mkey is not None else {}
        return call.fail(exc, revision=store.revision, revision_changed=False, **extra)
    extra = {} if mkey is None else {"mkey": mkey}
    return call.ok(revision=store.revision, revision_changed=changed, old_revision=old, **extra)


def _object_body(body: Any) -> Mapping[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, Mapping):
        raise CmdbError.invalid("request body must be a JSON object")
    return body


def _post(call: _Call, body: Any, action: str | None) -> tuple[Any, bool]:
    store, vdom, path = call.device.store, call.vdom, call.spec.path
    if action == "clone":
        source = call.mkey if call.mkey is not None else call.query.get("mkey")
        new_key = call.query.get("nkey")
        if source is None or not new_key:
            raise CmdbError.invalid("clone needs mkey and nkey")
        return store.clone(vdom, path, call.spec.parse_mkey(str(source)), new_key)
    complex_object = call.spec.category == "complex"
    if complex_object or (call.mkey is not None and call.child is None) or call.child_key is not None:
        raise CmdbError(405, None)
    if call.child is not None:
        return store.child_create(vdom, path, call.mkey, call.child, _object_body(body)), True
    if body is None:
        raise CmdbError.invalid("empty request body")
    return store.create(vdom, path, _object_body(body))


def _put(call: _Call, body: Any, action: str | None) -> tuple[Any, bool]:
    store, vdom, path = call.device.store, call.vdom, call.spec.path
    if call.spec.category == "complex":
        return None, store.update_singleton(vdom, path, _object_body(body))
    if call.mkey is None:
        raise CmdbError(405, None)
    if action == "move":
        source = body if isinstance(body, Mapping) and "action" in body else call.query
        before, after = source.get("before"), source.get("after")
        return call.mkey, store.move(vdom, path, call.mkey, before=before, after=after)
    if call.child is None:
        return store.update(vdom, path, call.mkey, _object_body(body))
    if call.child_key is None:
        raise CmdbError(405, None)
    args = (vdom, path, call.mkey, call.child, call.child_key)
    return call.mkey, store.child_update(*args, body=_object_body(body))


def _delete(call: _Call, _body: Any, _action: str | None) -> tuple[Any, bool]:
    store, vdom, path = call.device.store, call.vdom, call.spec.path
    if call.spec.category == "complex" or call.mkey is None:
        raise CmdbError(405, None)
    if call.child is None:
        return call.mkey, store.delete(vdom, path, call.mkey)
    if call.child_key is None:  # DELETE on a child table purges it
        _, changed = store.update(vdom, path, call.mkey, {call.child: []})
        return call.mkey, changed
    return call.mkey, store.child_delete(vdom, path, call.mkey, call.child, call.child_key)


_WRITES = {"POST": _post, "PUT": _put, "DELETE": _delete}


def _dispatch_write(call: _Call, method: str, body: Any, action: str | None) -> tuple[Any, bool]:
    write = _WRITES.get(method)
    if write is None:
        raise CmdbError(405, None)
    return write(call, body, action)
