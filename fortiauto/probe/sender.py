"""Who the probe says it is: the EHLO name and the envelope sender, chosen to pass FortiOS's spam checks.

Once the email filter profile has spam filtering on, FortiOS checks every SMTP session in
order (FortiOS admin guide, email filter "Filtering order"; reference/smtp-probe.md §4.3):
IP black/white list and DNSBL/ORDBL on the last hop, FortiGuard IP, **HELO DNS lookup**
(the EHLO name must resolve, older guides say to the connecting address), MIME headers and
address lists, banned words, **return-email DNS check** (the MAIL FROM domain must have DNS
records), FortiGuard checksum and URL checks. A probe that fails one of them is tagged or
rejected as spam although the path works, so ``probe/smtp.py`` sends:

- EHLO: the site's ``probe.ehlo``; else the SSH vantage's host name, the host the
  connection really comes from; else this machine's FQDN when it looks public; else the
  envelope sender's domain. Never a reserved name such as ``*.invalid``.
- MAIL FROM: the site's ``transaction.mail_from``; else ``fortiauto-probe@`` the
  recipient's domain, which has an MX record since mail for it arrives here.
- A plain-text body without URLs or attachments (checksum/URL checks), see ``smtp.py``.

The vantage's address (DNSBL, FortiGuard IP) cannot be chosen here: a vantage with a
listed address is a site problem that ``F18`` results point at. Names that can never
resolve publicly become warnings in the probe result.
"""

from __future__ import annotations

import ipaddress

from fortiauto.site.models import ProbeSpec, ProbeTransaction, parse_endpoint

__all__ = ["ehlo_name", "envelope_sender", "reserved_name", "sender_warnings"]

# RFC 2606 / RFC 6761 special-use names, RFC 8375 home.arpa, and the de-facto private ones:
# none of them resolves in public DNS, so a FortiGate's HELO or return-email lookup fails.
_RESERVED_SUFFIXES = (
    "invalid",
    "test",
    "example",
    "localhost",
    "local",
    "localdomain",
    "home.arpa",
    "internal",
    "lan",
    "corp",
    "intranet",
)
_RESERVED_DOMAINS = ("example.com", "example.net", "example.org")


def reserved_name(name: str) -> str | None:
    """Why ``name`` cannot pass a public DNS lookup, or ``None`` when it may."""
    bare = name.strip().rstrip(".").lower()
    if not bare:
        return "it is empty"
    if bare.startswith("[") or _is_ip(bare):
        return "it is an address, not a name"
    if "." not in bare:
        return "it is not a fully qualified name"
    for suffix in _RESERVED_SUFFIXES:
        if bare == suffix or bare.endswith("." + suffix):
            return f"*.{suffix} never resolves in public DNS"
    for domain in _RESERVED_DOMAINS:
        if bare == domain or bare.endswith("." + domain):
            return f"{domain} is reserved for documentation (RFC 2606)"
    return None


def envelope_sender(transaction: ProbeTransaction) -> str:
    """The MAIL FROM address: the site's, or ``fortiauto-probe@`` the recipient's domain."""
    if transaction.mail_from:
        return transaction.mail_from
    return f"fortiauto-probe@{_domain(transaction.rcpt_to) or 'localhost'}"


def ehlo_name(spec: ProbeSpec, *, machine_fqdn: str) -> str:
    """The EHLO argument, in the order the module docstring gives."""
    if spec.ehlo:
        return spec.ehlo
    if spec.via is not None and spec.via.ssh is not None:
        _, host, _ = parse_endpoint(spec.via.ssh, 22)
        if reserved_name(host) is None:
            return host
    if reserved_name(machine_fqdn) is None:
        return machine_fqdn
    if spec.transaction is not None:
        domain = _domain(envelope_sender(spec.transaction))
        if domain and reserved_name(domain) is None:
            return domain
    return machine_fqdn or "localhost"


def sender_warnings(*, ehlo: str, mail_from: str | None) -> list[str]:
    """What in the probe's identity an email filter with spam checks on will hold against it."""
    warnings = []
    why = reserved_name(ehlo)
    if why is not None:
        warnings.append(
            f"EHLO {ehlo}: {why}; with spam filtering on, FortiOS's HELO DNS lookup may tag the probe "
            "(set probe.ehlo to the vantage's public name)"
        )
    domain = _domain(mail_from) if mail_from else None
    why = reserved_name(domain) if domain else None
    if domain and why is not None:
        warnings.append(
            f"MAIL FROM domain {domain}: {why}; FortiOS's return-email DNS check may tag the probe "
            "(use a domain with MX or A records in transaction.mail_from)"
        )
    return warnings


def _domain(address: str) -> str | None:
    _, at, domain = address.rpartition("@")
    return domain.strip().rstrip(">") or None if at else None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
