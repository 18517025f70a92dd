"""Value rules of the site file: what FortiOS, HTTP and SMTP refuse, checked when the file loads.

First stage of the pipeline (site -> plan -> apply -> verify -> commit | rollback -> report).
``models.py`` puts these on its fields. A value that reaches a FortiGate (a profile, policy,
VIP or VDOM name), a header (the API token) or an SMTP command (EHLO name, addresses) is
refused here, with the reason, instead of failing at the device after some writes, or
changing the meaning of what is sent. Names are sent exactly as written: a name is data,
never re-read as YAML or CLI text, so ``mail: inbound``, ``mail #1`` or ``null`` (quoted) stay
those strings; the characters FortiOS refuses are refused here.

Sources of the limits:

- FortiOS Administration Guide, "Text strings" (6.2 - 7.6): names may not contain ``"``, ``'``,
  ``<`` or ``>``; VDOM names use only letters, digits, ``-`` and ``_``.
  https://docs.fortinet.com/document/fortigate/7.4.0/administration-guide/651640/text-strings
- Name lengths, from the FortiOS CLI reference tables and the REST schemas
  (fortinet.fortios Ansible collection 2.4.2, FortiOS 7.6.5 schema): email filter profile,
  SSL/SSH inspection profile, protocol options, firewall policy and local certificate names
  35 characters (7.6.5 allows 47 for profiles; 35 holds on every release); firewall VIP
  79; VDOM 31 (https://docs.fortinet.com/document/fortigate/7.2.6/cli-reference/620).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from fortiauto.errors import InputError
from fortiauto.fortios.pinning import is_pin, parse_pin

__all__ = [
    "DEVICE_NAME_MAX",
    "FORTIOS_REFUSED",
    "SITE_RULE",
    "EmailfilterProfileName",
    "Label",
    "OneLine",
    "PolicyName",
    "ProtocolOptionsName",
    "Seconds",
    "SmtpWord",
    "SslProfileName",
    "VdomName",
    "VipName",
    "password_problem",
    "pin_sha256",
    "rule",
    "token_problem",
    "username_problem",
]

SITE_RULE = "site_rule"

FORTIOS_REFUSED = "\"'<>"
DEVICE_NAME_MAX = 64
VDOM_NAME_MAX = 31
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_VDOM = re.compile(r"^[A-Za-z0-9_-]+$")
# Device and mail-server names label console lines, Markdown tables, JUnit cases and journal
# entries: no spaces, separators or markup characters, so no output format can be forged.
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
_TOKEN = re.compile(r"^[\x21-\x7e]+$")  # visible ASCII: what an HTTP header value carries safely


def rule(message: str, key: str = "") -> PydanticCustomError:
    """A validation error whose ``key`` names the field inside the model that is wrong.

    Cross-field checks run on the whole model, so pydantic would place them on the model;
    the loader appends ``key`` to the location to point at the line the user must change.
    """
    return PydanticCustomError(SITE_RULE, "{message}", {"message": message, "key": key})


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:37] + "...")


def _one_line(text: str) -> str:
    if _CONTROL.search(text):
        raise rule("contains a line break or another control character")
    return text


# Free text that ends up in one line of a protocol (SMTP commands, URLs) or of a report.
OneLine = Annotated[str, AfterValidator(_one_line)]

_SPACE_OR_ANGLE = re.compile(r"[\s<>]")


def _smtp_word(text: str) -> str:
    _one_line(text)
    if _SPACE_OR_ANGLE.search(text):
        raise rule(f"{_shown(text)} contains a space or < >; an SMTP command would change its meaning")
    return text


# One word of an SMTP command: a host name, an EHLO name, an address in MAIL FROM:<...> / RCPT TO:<...>.
SmtpWord = Annotated[str, AfterValidator(_smtp_word)]


def _common(text: str) -> None:
    if not text:
        raise rule("must not be empty")
    _one_line(text)
    if text != text.strip():
        raise rule(f"{_shown(text)} starts or ends with a space")


def _fortios_name(what: str, limit: int) -> Callable[[str], str]:
    def check(text: str) -> str:
        _common(text)
        bad = sorted({c for c in text if c in FORTIOS_REFUSED})
        if bad:
            raise rule(f"{_shown(text)} contains {' '.join(bad)}; FortiOS refuses \" ' < > in names")
        if len(text) > limit:
            raise rule(
                f"{_shown(text)} is {len(text)} characters; FortiOS allows at most {limit} in {what} name"
            )
        return text

    return check


def _name_schema(limit: int) -> Any:
    return Field(json_schema_extra={"maxLength": limit, "pattern": _NAME_PATTERN})


_NAME_PATTERN = f"^[^{re.escape(FORTIOS_REFUSED)}\\x00-\\x1f\\x7f]+$"
EmailfilterProfileName = Annotated[
    str, AfterValidator(_fortios_name("an email filter profile", 35)), _name_schema(35)
]
SslProfileName = Annotated[
    str, AfterValidator(_fortios_name("an SSL/SSH inspection profile", 35)), _name_schema(35)
]
ProtocolOptionsName = Annotated[
    str, AfterValidator(_fortios_name("a protocol options profile", 35)), _name_schema(35)
]
PolicyName = Annotated[str, AfterValidator(_fortios_name("a firewall policy", 35)), _name_schema(35)]
VipName = Annotated[str, AfterValidator(_fortios_name("a virtual IP", 79)), _name_schema(79)]
# Seconds: finite (``.inf`` would switch a timeout off, ``.nan`` compares false with every bound).
Seconds = Annotated[float, Field(allow_inf_nan=False)]


def _vdom(text: str) -> str:
    _common(text)
    if not _VDOM.match(text):
        raise rule(f"{_shown(text)}: VDOM names use only letters, digits, - and _ (FortiOS rule)")
    if len(text) > VDOM_NAME_MAX:
        raise rule(f"{_shown(text)} is {len(text)} characters; FortiOS allows at most {VDOM_NAME_MAX}")
    return text


VdomName = Annotated[
    str,
    AfterValidator(_vdom),
    Field(json_schema_extra={"maxLength": VDOM_NAME_MAX, "pattern": _VDOM.pattern}),
]


def _label(text: str) -> str:
    _common(text)
    if not _LABEL.match(text):
        raise rule(
            f"{_shown(text)}: names use letters, digits and . _ : - (starting with a letter or digit), "
            "so that no report or console line can be forged"
        )
    if len(text) > DEVICE_NAME_MAX:
        raise rule(f"{_shown(text)} is {len(text)} characters; at most {DEVICE_NAME_MAX}")
    return text


Label = Annotated[
    str,
    AfterValidator(_label),
    Field(json_schema_extra={"maxLength": DEVICE_NAME_MAX, "pattern": _LABEL.pattern}),
]


def token_problem(token: str) -> str | None:
    """Why an API token cannot be sent as ``Authorization: Bearer <token>``, or None.

    Never names the token: it is a secret.
    """
    if not token.strip():
        return "the token is empty"
    if token != token.strip():
        return (
            "the token starts or ends with a space or line break "
            "(a token file with an extra blank line? only its last newline is removed)"
        )
    if not _TOKEN.match(token):
        return "the token contains a space, line break or other character no API token has"
    return None


def password_problem(password: str) -> str | None:
    """Why a password cannot be used for a login, or None; never names the password."""
    if not password:
        return "the password is empty"
    if _CONTROL.search(password):
        return (
            "the password contains a line break or control character "
            "(a password file with an extra blank line? only its last newline is removed)"
        )
    return None


def username_problem(username: str) -> str | None:
    if not username:
        return "must not be empty"
    if _CONTROL.search(username):
        return "contains a line break or another control character"
    if username != username.strip():
        return "starts or ends with a space"
    return None


def pin_sha256(text: str) -> str | None:
    """``sha256:AB:CD:..`` or ``sha256:abcd..`` as 64 lowercase hex digits; None if not a pin.

    The same parser as the client's (``fortios/pinning.py``), so what loads is what connects.
    """
    if not is_pin(text):
        return None
    try:
        return parse_pin(text)
    except InputError:
        raise rule(
            'a pin is "sha256:" and the 64 hex digits of the SHA-256 of the device\'s certificate '
            "(as openssl x509 -noout -fingerprint -sha256 prints it)"
        ) from None
