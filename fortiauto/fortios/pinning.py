"""``verify_tls: "sha256:<fingerprint>"``: trust exactly one certificate, the device's own self-signed one.

A FortiGate's factory certificate is self-signed, so no CA can vouch for it; pinning its
SHA-256 fingerprint (of the DER certificate, as ``openssl x509 -noout -fingerprint -sha256``
prints it) is how an admin says "this device". ``pinned_context`` builds the client's TLS
context: chain and hostname checks are off (there is no chain), and the leaf certificate is
compared with the pin inside the handshake itself (``SSLContext.sslobject_class``), before
httpx can send a byte, on every connection the pool opens, so a token or password never goes
to an impostor. A mismatch raises ``PinMismatch``; ``errormap`` turns it into ``TLSVerifyError``.
The TLS handshake still proves the peer holds the certificate's private key.
"""

from __future__ import annotations

import hashlib
import re
import ssl
from typing import Final

from fortiauto.errors import InputError

__all__ = ["PIN_PREFIX", "PinMismatch", "fingerprint", "is_pin", "parse_pin", "pinned_context"]

PIN_PREFIX: Final = "sha256:"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class PinMismatch(ssl.SSLError):
    """The device presented a certificate other than the pinned one (``expected``, ``seen``: hex)."""

    def __init__(self, expected: str, seen: str) -> None:
        self.expected = expected
        self.seen = seen
        super().__init__(f"certificate fingerprint sha256:{seen} is not the pinned sha256:{expected}")


def is_pin(value: object) -> bool:
    """True for a ``verify_tls`` string that pins a fingerprint rather than naming a CA bundle."""
    return isinstance(value, str) and value.strip().lower().startswith(PIN_PREFIX)


def parse_pin(text: str) -> str:
    """``sha256:AB:CD:...`` (colons, spaces and case as any tool prints them) -> 64 lowercase hex."""
    body = text.strip()[len(PIN_PREFIX) :]
    digest = re.sub(r"[\s:]", "", body).lower()
    if not _HEX64.match(digest):
        raise InputError(
            "verify_tls: a pin is sha256: followed by the certificate's 64-hex-digit SHA-256 "
            "fingerprint (openssl x509 -noout -fingerprint -sha256 -in device.pem)"
        )
    return digest


def fingerprint(der: bytes) -> str:
    """The SHA-256 fingerprint of a DER certificate, 64 lowercase hex."""
    return hashlib.sha256(der).hexdigest()


def pinned_context(pin: str) -> ssl.SSLContext:
    """A client context that accepts the certificate whose fingerprint is ``pin`` (hex) and no other."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.sslobject_class = _pinned_object_class(pin)
    return context


def _pinned_object_class(pin: str) -> type[ssl.SSLObject]:
    class PinnedSSLObject(ssl.SSLObject):
        def do_handshake(self) -> None:
            super().do_handshake()  # raises SSLWantRead/Write until the handshake is complete
            der = self.getpeercert(binary_form=True)
            seen = fingerprint(der) if der else "none"
            if seen != pin:
                raise PinMismatch(pin, seen)

    return PinnedSSLObject
