"""The FortiManager JSON-RPC envelope: build one request body, read one answer. No I/O.

Every FortiManager API call is ``POST /jsonrpc`` with ``{id, method, params: [{url, data | options}],
session}``; the answer is ``{id, result: [{status: {code, message}, url, data?}], session?}``
(FortiManager JSON API docs, "FMG JSON API Introduction": how-to-fortimanager-api.readthedocs.io).
``client.py`` sends what ``request_body`` builds and hands the decoded answer to ``parse_answer``;
``errormap.py`` turns a non-zero ``code`` into ``fortiauto.errors``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["READ_METHODS", "WRITE_METHODS", "Answer", "MalformedAnswer", "parse_answer", "request_body"]

# JSON-RPC methods FortiManager knows (pyfmg's FortiManager methods; Ansible FMGRMethods).
READ_METHODS = frozenset({"get"})
WRITE_METHODS = frozenset({"set", "add", "update", "delete", "replace", "clone", "move", "unset", "exec"})


class MalformedAnswer(ValueError):
    """The body is not a JSON-RPC answer FortiManager would send."""


@dataclass(frozen=True)
class Answer:
    """One JSON-RPC result: its status, the url it answers and the ``data`` (``None`` when absent)."""

    code: int
    message: str
    url: str
    data: Any
    session: str | None
    raw: Mapping[str, Any]

    @property
    def ok(self) -> bool:
        return self.code == 0


def request_body(
    method: str,
    url: str,
    *,
    request_id: int,
    session: str | None,
    data: Any = None,
    options: Mapping[str, Any] | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """The JSON-RPC request for one ``url``.

    ``options`` go beside ``url`` (``fields``, ``filter``, ``option``, ``loadsub``: the get
    parameters); ``data`` is the object or action arguments. ``verbose`` asks for symbolic
    values ("enable", "insync") instead of FortiManager's enum numbers.
    """
    param: dict[str, Any] = {"url": url}
    if options:
        param.update(options)
    if data is not None:
        param["data"] = data
    body: dict[str, Any] = {"id": request_id, "method": method, "params": [param]}
    if session is not None:
        body["session"] = session
    if verbose:
        body["verbose"] = 1
    return body


def _first_result(body: Mapping[str, Any]) -> Mapping[str, Any]:
    result = body.get("result")
    if isinstance(result, list):
        result = result[0] if result else None
    if not isinstance(result, Mapping):
        raise MalformedAnswer("the answer has no result")
    return result


def parse_answer(body: Any) -> Answer:
    """Read a decoded JSON-RPC answer.

    Raises:
        MalformedAnswer: no ``result`` or no integer ``status.code`` in it.
    """
    if not isinstance(body, Mapping):
        raise MalformedAnswer("the answer is not a JSON object")
    result = _first_result(body)
    status = result.get("status")
    code = status.get("code") if isinstance(status, Mapping) else None
    if isinstance(code, bool) or not isinstance(code, int):
        raise MalformedAnswer("the result has no status code")
    message = status.get("message", "") if isinstance(status, Mapping) else ""
    session = body.get("session")
    return Answer(
        code=code,
        message=str(message or ""),
        url=str(result.get("url", "")),
        data=result.get("data"),
        session=session if isinstance(session, str) and session else None,
        raw=result,
    )
