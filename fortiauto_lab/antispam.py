"""What the email filter decides about one message: FortiOS's SMTP anti-spam checks, in FortiOS's order.

The data plane (``dataplane.py``) holds a message that a policy with an email filter relays
until its final dot, then asks ``judge`` for a ``Verdict``; the bound profile's ``smtp``
``action`` says what happens next (``tag``: ``tagged`` rewrites the message and it is
delivered; ``discard``: the client hears ``Verdict.reply`` and nothing is delivered), and the
verdict names the check in the email filter log line. No I/O.

Order (FortiOS admin guide "Filtering order", 6.2/7.0 doc 110225, and the handbook text quoted in
community thread 50411; local override disabled), with what the lab does at each step:

1. IP block/allow list on the last hop (``spambal``/``spambwl``): the lab serves no
   ``emailfilter block-allow-list`` table, so it never fires.
2. DNSBL/ORDBL on the last hop (``spamrbl``), FortiGuard IP check on the last hop
   (``spamfsip``), HELO DNS lookup (``spamhelodns``; "not available for SMTPS", FortiOS 6.0
   CLI reference, ``system replacemsg spam``, so skipped on implicit TLS).
3. MIME header check (``spamhdrcheck``) and e-mail address list, 4./6. banned words
   (``bannedword``), 5. IP list on ``Received:`` addresses (``hdrip``): no tables, never fire.
7. Return-email DNS check (``spamraddrdns``), FortiGuard checksum (``spamfschksum``) and URL
   (``spamfsurl``) checks; FortiGuard phishing URLs (``spamfsphish``) have no lab list.

FortiOS runs its remote lookups in parallel and the first answer that says spam wins; the
lab has no network, so the order above is the order of its answers and the first check that
fires decides. ``local-override`` moves local lists ahead of the remote checks: with no local
list in the lab it changes nothing.

The lab has no DNS and no FortiGuard. It models them deterministically:

- DNS (``resolves``): a name resolves unless it is an address or address literal, a single
  label, not LDH syntax, or under a special-use name that public DNS never answers (RFC 2606
  and RFC 6761: ``invalid``, ``test``, ``example``, ``localhost``; RFC 6762 ``local``, RFC 7686
  ``onion``, RFC 8375 ``home.arpa``, ICANN's private-use ``internal``). FortiOS 7.x only asks
  whether the HELO name exists (admin guide "Spam email header", doc 615700); older guides
  also compare it with the client's address, which the lab cannot model.
- DNSBL servers and FortiGuard's IP list: the addresses ``Listings`` names (the lab's
  ``dnsbl-listed`` and ``fortiguard-listed`` device states); nothing by default, so a lab
  client on 127.0.0.1 passes.
- FortiGuard's checksum list: messages carrying SpamAssassin's GTUBE test string
  (https://spamassassin.apache.org/gtube/), the de-facto "always spam" test message.
- FortiGuard's URL list: URLs whose host is SURBL's permanent test point
  (``surbl-org-permanent-test-point.com``, surbl.org "SURBL Lists"), or a host ``Listings``
  adds.
- A null reverse path (``MAIL FROM:<>``) has no return domain: where FortiOS's behaviour is
  not documented the lab takes the conservative reading, and the return-email check fires.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "GTUBE",
    "SPAMINFO_HEADER",
    "SURBL_TEST_POINT",
    "Listings",
    "Mail",
    "SpamAction",
    "SpamFilter",
    "Verdict",
    "judge",
    "resolves",
    "tagged",
]

SpamAction = Literal["pass", "tag", "discard"]

GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
SURBL_TEST_POINT = "surbl-org-permanent-test-point.com"
# ``tag-type spaminfo`` appends the verdict under this header. The admin guide calls the field
# "x-spaminfo" without its full name; X-FEAS-SPAMINFO is the name seen on mail FortiGate units
# tagged (not in the documents reached): the lab's reading.
SPAMINFO_HEADER = "X-FEAS-SPAMINFO"
# ``tag-type header`` appends "a user defined mime header" (FortiOS 6.0 CLI reference,
# ``spamfilter profile``): a tag-msg of the form "Name: value" is that header as written; a
# bare tag-msg goes under this name (the lab's choice: FortiOS does not document one).
TAG_HEADER = "X-Spam-Tag"

# Special-use names no public resolver answers (module docstring).
_NEVER_RESOLVE = ("invalid", "test", "example", "localhost", "local", "onion", "home.arpa", "internal")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_URL = re.compile(rb"\b(?:https?|ftp)://([a-z0-9.-]+)", re.IGNORECASE)
_MAX_NAME = 253


@dataclass(frozen=True)
class SpamFilter:
    """The bound email filter profile's anti-spam settings (``spam-filtering enable``)."""

    checks: tuple[str, ...]  # ``options``, in the profile's order (the lab applies FortiOS's)
    action: SpamAction = "discard"  # ``smtp action``; FortiOS's default is discard
    tag_type: tuple[str, ...] = ("subject", "spaminfo")
    tag_msg: str = "Spam"
    log: bool = True  # ``spam-log``: verdicts are logged
    profile: str = ""

    @property
    def active(self) -> bool:
        """Whether any check runs: ``action pass`` "disables spam filtering" (FortiOS 5.2 CLI reference)."""
        return bool(self.checks) and self.action != "pass"


@dataclass(frozen=True)
class Listings:
    """What the lab's stand-ins for the DNSBL servers and FortiGuard list."""

    dnsbl: frozenset[str] = frozenset()  # client addresses DNSBL/ORDBL servers list
    fortiguard_ip: frozenset[str] = frozenset()  # client addresses FortiGuard AntiSpam lists
    fortiguard_url: frozenset[str] = frozenset({SURBL_TEST_POINT})  # URL hosts FortiGuard lists


@dataclass(frozen=True)
class Mail:
    """One message as the email filter sees it at the end of DATA."""

    client_ip: str  # the last hop: the address the session comes from
    helo: str  # the EHLO/HELO argument of the session
    mail_from: str  # the reverse path, without angle brackets ("" for the null path)
    content: bytes  # header and body as DATA carried them, dot-stuffing undone
    smtps: bool = False  # implicit TLS (port 465): no HELO DNS lookup there


@dataclass(frozen=True)
class Verdict:
    """The check that judged a message as spam, and how FortiOS says so.

    ``spaminfo`` is the FortiOS text for the check (admin guide "Spam email header", doc 615700),
    used in the ``X-FEAS-SPAMINFO`` header and the log line's ``msg``; ``replacemsg`` names the
    spam replacement message FortiOS adds to the SMTP reply when the action is discard (FortiOS
    6.0 CLI reference, ``system replacemsg spam``) and ``reply`` is the lab's wording of it.
    """

    check: str
    spaminfo: str
    replacemsg: str
    reply: str

    @property
    def smtp_reply(self) -> bytes:
        return f"554 5.7.1 {self.reply}\r\n".encode()


def resolves(name: str) -> bool:
    """Whether the lab's model of public DNS has a record for ``name`` (module docstring)."""
    bare = name.strip().rstrip(".").lower()
    if not bare or len(bare) > _MAX_NAME or bare.startswith("[") or _is_address(bare):
        return False
    labels = bare.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return False
    return not any(bare == suffix or bare.endswith("." + suffix) for suffix in _NEVER_RESOLVE)


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _domain(address: str) -> str:
    return address.rpartition("@")[2] if "@" in address else ""


# -- the checks: each returns a Verdict when it fires --------------------------------


def _dnsbl(mail: Mail, listings: Listings) -> Verdict | None:
    if mail.client_ip not in listings.dnsbl:
        return None
    return Verdict(
        "spamrbl",
        f"dnsbl, path block/allow ip {mail.client_ip}",
        "smtp-spam-dnsbl",
        f"This email has been blocked. The sender's IP address {mail.client_ip} is listed by a "
        "DNSBL/ORDBL server.",
    )


def _fortiguard_ip(mail: Mail, listings: Listings) -> Verdict | None:
    if mail.client_ip not in listings.fortiguard_ip:
        return None
    return Verdict(
        "spamfsip",
        f"FortiGuard-AntiSpam ip, path block/allow ip {mail.client_ip}",
        "smtp-spam-feip",
        f"This email has been blocked. The sender's IP address {mail.client_ip} is on the FortiGuard "
        "AntiSpam block list.",
    )


def _helo_dns(mail: Mail, _listings: Listings) -> Verdict | None:
    if mail.smtps or resolves(mail.helo):
        return None
    return Verdict(
        "spamhelodns",
        "helo-dns",
        "smtp-spam-helo",
        "This email has been blocked. The HELO/EHLO domain is invalid.",
    )


def _return_email_dns(mail: Mail, _listings: Listings) -> Verdict | None:
    domain = _domain(mail.mail_from)
    if domain and resolves(domain):
        return None
    why = (
        f"return-email, domain {domain} has neither MX nor A record"
        if domain and not _is_address(domain.strip("[]"))
        else f"return-email, domain name {domain} has invalid syntax"
    )
    return Verdict(
        "spamraddrdns", why, "reversedns", "This email has been blocked. The return email domain is invalid."
    )


def _ase(check: str, what: str) -> Verdict:
    # FortiGuard's answers for checksum and URL checks come from its antispam engine (ASE);
    # the admin guide's text ends in a comma, the lab adds which lookup matched.
    return Verdict(
        check,
        f"FortiGuard-AntiSpam ase, {what}",
        "smtp-spam-ase",
        "This email has been blocked. The email message is detected as spam.",
    )


def _checksum(mail: Mail, _listings: Listings) -> Verdict | None:
    return _ase("spamfschksum", "email checksum") if GTUBE in mail.content else None


def _url(mail: Mail, listings: Listings) -> Verdict | None:
    for match in _URL.finditer(mail.content):
        host = match.group(1).decode("ascii", "replace").lower().rstrip(".")
        if any(host == h or host.endswith("." + h) for h in listings.fortiguard_url):
            return _ase("spamfsurl", f"url {host}")
    return None


Check = Callable[[Mail, Listings], Verdict | None]

# FortiOS's filtering order (module docstring): only the checks the lab can make are here.
ORDER: tuple[tuple[str, Check], ...] = (
    ("spamrbl", _dnsbl),
    ("spamfsip", _fortiguard_ip),
    ("spamhelodns", _helo_dns),
    ("spamraddrdns", _return_email_dns),
    ("spamfschksum", _checksum),
    ("spamfsurl", _url),
)


def judge(mail: Mail, spam: SpamFilter, listings: Listings | None = None) -> Verdict | None:
    """The first of the profile's checks, in FortiOS's order, that judges ``mail`` as spam; None: clean."""
    if not spam.active:
        return None
    lists = listings if listings is not None else Listings()
    for option, check in ORDER:
        if option in spam.checks:
            verdict = check(mail, lists)
            if verdict is not None:
                return verdict
    return None


# -- tagging ---------------------------------------------------------------------------


@dataclass
class _Split:
    head: list[bytes] = field(default_factory=list)
    separator: bytes = b"\r\n"
    body: bytes = b""


def _split(content: bytes) -> _Split:
    """Header lines (folded lines kept apart, line ends kept), the blank line, and the body."""
    out = _Split()
    rest = content
    while rest:
        line, newline, rest_after = rest.partition(b"\n")
        line += newline
        if line in (b"\r\n", b"\n"):
            out.separator = line
            out.body = rest_after
            return out
        out.head.append(line)
        rest = rest_after
    out.separator = b""
    return out


def _eol(split: _Split) -> bytes:
    return b"\r\n" if not split.head or split.head[0].endswith(b"\r\n") else b"\n"


def _tag_subject(split: _Split, tag: bytes) -> None:
    for index, line in enumerate(split.head):
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() == b"subject":
            split.head[index] = name + b": " + tag + b" " + value.lstrip(b" \t")
            return
    split.head.append(b"Subject: " + tag + _eol(split))


def tagged(content: bytes, verdict: Verdict, spam: SpamFilter) -> bytes:
    """``content`` as FortiOS delivers a message it tags (``tag-type``, ``tag-msg``).

    ``subject``: ``tag-msg`` prepended to the subject; ``header``: a header appended;
    ``spaminfo``: the verdict appended under ``X-FEAS-SPAMINFO`` (FortiOS 6.0 CLI reference,
    ``spamfilter profile``: "Prepend text to spam email subject", "Append a user defined mime
    header", "Append spam info to spam email header").
    """
    split = _split(content)
    eol = _eol(split)
    tag = spam.tag_msg.encode("utf-8", "replace")
    if "subject" in spam.tag_type:
        _tag_subject(split, tag)
    if "header" in spam.tag_type:
        name, colon, _ = spam.tag_msg.partition(":")
        line = (
            spam.tag_msg
            if colon and name.strip() and " " not in name.strip()
            else f"{TAG_HEADER}: {spam.tag_msg}"
        )
        split.head.append(line.encode("utf-8", "replace") + eol)
    if "spaminfo" in spam.tag_type:
        split.head.append(f"{SPAMINFO_HEADER}: {verdict.spaminfo}".encode("utf-8", "replace") + eol)
    return b"".join(split.head) + (split.separator or eol) + split.body
