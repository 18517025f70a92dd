"""The SMTP probe: does mail still flow through the VIP? One hand-written asyncio dialogue per attempt.

The engine runs it before a change (the baseline), after it, and after a rollback; the
verdict decides commit or rollback. Every step (dns, connect, banner, ehlo, starttls, tls,
ehlo-tls, auth, mail, rcpt, data, dot, quit) has its own ``spec.timeout`` and a monotonic
timing, and a failure is named with one ``FailureClass`` (F1-F17 of
reference/smtp-probe.md). ``run_probe`` retries on fresh connections and compares with the
baseline; ``probe_once`` is one attempt. The byte level is ``probe/wire.py``, the
certificate verdict ``probe/certcheck.py``, where the connection starts (``probe.via``)
``probe/vantage.py`` and who the probe says it is (EHLO, MAIL FROM) ``probe/sender.py``.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Literal

from fortiauto.probe.certcheck import (
    CertProblem,
    check_cert,
    check_chain,
    load_trust,
    looks_like_inspection_ca,
    read_cert,
    trust_label,
)
from fortiauto.probe.classify import FailureClass, against_baseline, is_permanent, spam_reply
from fortiauto.probe.sender import ehlo_name, envelope_sender, sender_warnings
from fortiauto.probe.vantage import Vantage, VantageFailed, open_vantage
from fortiauto.probe.wire import BadReply, ConnectionClosed, Reply, Wire
from fortiauto.results import ProbeResult, ProbeStep
from fortiauto.site import ProbeSpec, ProbeTransaction

__all__ = ["probe_once", "run_probe"]

Sleep = Callable[[float], Awaitable[None]]
_NoReplyKind = Literal["timeout", "closed", "garbled"]
# Steps whose 4xx/5xx may be the email filter's spam verdict rather than a broken path.
_SPAM_STEPS = frozenset({"banner", "ehlo", "helo", "mail", "rcpt", "data", "dot"})


async def run_probe(
    spec: ProbeSpec,
    *,
    pin_sha256: str | None = None,
    baseline: ProbeResult | None = None,
    subject_token: str | None = None,
    sleep: Sleep = asyncio.sleep,
) -> ProbeResult:
    """Probe up to ``spec.retries`` times on fresh connections, ``spec.retry_delay`` apart.

    Returns the first passing attempt, or the last failing one; ``attempts`` says how many
    ran. A failure another attempt cannot change (a 5xx, a stripped STARTTLS, the wrong
    certificate) ends the retries early. With ``baseline``, a STARTTLS that went missing is
    a failure (downgrade) and a much slower banner a warning.
    """
    attempt = 0
    while True:
        attempt += 1
        result, permanent = await _Attempt(spec, pin_sha256=pin_sha256, subject_token=subject_token).run()
        judged = against_baseline(result, baseline)
        if judged.passed != result.passed:  # the baseline turned a pass into a downgrade
            permanent = is_permanent(FailureClass.STARTTLS_MISSING)
        if judged.passed or permanent or attempt >= spec.retries:
            return replace(judged, attempts=attempt)
        await sleep(spec.retry_delay)


async def probe_once(
    spec: ProbeSpec, *, pin_sha256: str | None = None, subject_token: str | None = None
) -> ProbeResult:
    """One attempt on one fresh connection, without retries or baseline comparison."""
    result, _ = await _Attempt(spec, pin_sha256=pin_sha256, subject_token=subject_token).run()
    return result


class _StepFailed(Exception):
    """Ends an attempt: the failure class, its one-line detail and whether retrying is pointless."""

    def __init__(self, failure: FailureClass, detail: str, *, permanent: bool) -> None:
        super().__init__(detail)
        self.failure = failure
        self.detail = detail
        self.permanent = permanent


class _NoReply(Exception):
    def __init__(self, kind: _NoReplyKind, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def _ms(start: float) -> float:
    return (time.monotonic() - start) * 1000.0


def _one_line(value: str) -> str:
    # Site values end up inside SMTP commands and headers: a CR or LF would inject a command.
    return value.replace("\r", "").replace("\n", "")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _hostport(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _tls_context() -> ssl.SSLContext:
    # Verification off on purpose: port-25 senders rarely verify, and the probe must read
    # the served leaf even when it is wrong; certcheck.py then judges it.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _extensions(reply: Reply) -> dict[str, str]:
    """EHLO keywords (upper case) to their parameters; the first line is the greeting."""
    out: dict[str, str] = {}
    for line in reply.lines[1:]:
        keyword, _, params = line.strip().partition(" ")
        if keyword:
            out[keyword.upper()] = params
    return out


def _message(*, transaction: ProbeTransaction, message_id: str, subject: str) -> list[str]:
    # Plain text, no URL, no attachment: nothing for FortiGuard's URL or checksum checks to match.
    return [
        f"Date: {formatdate(usegmt=True)}",
        f"From: <{_one_line(envelope_sender(transaction))}>",
        f"To: <{_one_line(transaction.rcpt_to)}>",
        f"Subject: {subject}",
        f"Message-ID: {message_id}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        "fortiauto probe: checks that inbound mail flows through the firewall. It can be discarded.",
    ]


class _Attempt:
    """One connection walked through the steps; collects steps, transcript and facts."""

    def __init__(self, spec: ProbeSpec, *, pin_sha256: str | None, subject_token: str | None) -> None:
        self.spec = spec
        self.pin = pin_sha256
        self.subject_token = subject_token
        self.steps: list[ProbeStep] = []
        self.transcript: list[str] = []
        self.warnings: list[str] = []
        self.wire: Wire | None = None
        self.in_tls = False
        self.extensions: dict[str, str] = {}
        self.starttls_advertised: bool | None = None
        self.banner_ms: float | None = None
        self.peer_sha256: str | None = None
        self.peer_issuer: str | None = None
        self.message_id: str | None = None
        self.subject: str | None = None
        self.vantage: Vantage | None = open_vantage(spec.via) if spec.via is not None else None
        self.ehlo = ""

    async def run(self) -> tuple[ProbeResult, bool]:
        try:
            await self._walk()
        except _StepFailed as failed:
            self._note(f"*** {failed.detail}")
            self._abort()
            if self.vantage is not None:
                await self.vantage.close()
            return self._result(failed.failure), failed.permanent
        except BaseException:
            self._abort()  # cancelled (Ctrl-C, rollout halt): owe the server nothing
            if self.vantage is not None:
                self.vantage.abort()
            raise
        await self._close()
        return self._result(None), False

    async def _walk(self) -> None:
        spec = self.spec
        await self._introduce()
        # Through a vantage the name is resolved there, as an outside sender would (split DNS).
        await self._connect(await self._resolve() if self.vantage is None else [spec.host])
        if spec.mode == "smtps":
            await self._tls()
        await self._banner()
        await self._ehlo("ehlo", FailureClass.EHLO_REJECTED, helo_fallback=True)
        if spec.mode in ("plain", "starttls", "opportunistic"):
            self.starttls_advertised = "STARTTLS" in self.extensions
        if spec.mode in ("starttls", "opportunistic") and await self._starttls():
            await self._tls()
            # RFC 3207 §4.2: forget what was learned in clear text and ask again under TLS.
            await self._ehlo("ehlo-tls", FailureClass.POST_TLS_EHLO, helo_fallback=False)
        if spec.username and spec.password is not None:
            await self._auth(spec.username, spec.password.get_secret_value())
        if spec.transaction is not None:
            await self._transaction(spec.transaction)
        await self._quit()

    # -- bookkeeping -----------------------------------------------------------------------

    def _note(self, line: str) -> None:
        self.transcript.append(line)

    def _heard(self, line: str) -> None:
        self.transcript.append(("<~  " if self.in_tls else "<-  ") + line)

    def _send(self, command: str, *, shown: str | None = None) -> None:
        assert self.wire is not None
        self.transcript.append((" ~> " if self.in_tls else " -> ") + (shown or command))
        self.wire.write(command.encode("utf-8") + b"\r\n")

    def _record(self, step: str, start: float, *, ok: bool, detail: str) -> None:
        self.steps.append(ProbeStep(step=step, ms=_ms(start), ok=ok, detail=detail))

    def _fail(
        self, step: str, start: float, failure: FailureClass, detail: str, *, code: int | None = None
    ) -> _StepFailed:
        self._record(step, start, ok=False, detail=detail)
        return _StepFailed(failure, f"{step}: {detail}", permanent=is_permanent(failure, code))

    def _result(self, failure: FailureClass | None) -> ProbeResult:
        return ProbeResult(
            passed=failure is None,
            mode=self.spec.mode,
            failure_class=None if failure is None else failure.value,
            steps=tuple(self.steps),
            transcript=tuple(self.transcript),
            warnings=tuple(self.warnings),
            message_id=self.message_id,
            subject=self.subject,
            peer_cert_sha256=self.peer_sha256,
            peer_issuer=self.peer_issuer,
            starttls_advertised=self.starttls_advertised,
            banner_ms=self.banner_ms,
            vantage=self.vantage.label if self.vantage is not None else None,
        )

    def _abort(self) -> None:
        if self.wire is not None:
            self.wire.abort()

    async def _close(self) -> None:
        if self.wire is not None:
            await self.wire.close(timeout=min(self.spec.timeout, 1.0))
            self._note("=== Connection closed with remote host.")
        if self.vantage is not None:
            await self.vantage.close()

    # -- talking ---------------------------------------------------------------------------

    async def _exchange(self, command: str | None, *, shown: str | None = None) -> Reply:
        """Send ``command`` (``None``: just listen) and read one reply within the step budget."""
        assert self.wire is not None
        try:
            async with asyncio.timeout(self.spec.timeout):
                if command is not None:
                    self._send(command, shown=shown)
                return await self.wire.read_reply(self._heard)
        except TimeoutError:
            raise _NoReply("timeout", f"no reply within {self.spec.timeout:g} s") from None
        except ConnectionClosed as exc:
            raise _NoReply("closed", str(exc)) from None
        except BadReply as exc:
            raise _NoReply("garbled", str(exc)) from None

    async def _say(
        self,
        step: str,
        start: float,
        command: str | None,
        failure: FailureClass,
        *,
        shown: str | None = None,
        closed_as: FailureClass | None = None,
        garbled_as: FailureClass | None = None,
    ) -> Reply:
        try:
            return await self._exchange(command, shown=shown)
        except _NoReply as exc:
            named = {"closed": closed_as, "garbled": garbled_as}.get(exc.kind) or failure
            raise self._fail(step, start, named, exc.detail) from None

    def _expect(
        self, step: str, start: float, reply: Reply, codes: tuple[int, ...], failure: FailureClass
    ) -> None:
        if reply.code not in codes:
            raise self._rejected(step, start, reply, failure)
        self._record(step, start, ok=True, detail=str(reply))

    def _rejected(self, step: str, start: float, reply: Reply, failure: FailureClass) -> _StepFailed:
        text = " ".join(reply.lines)
        if step in _SPAM_STEPS and spam_reply(reply.code, text):
            detail = f"rejected as spam by the email filter: {reply}"
            return self._fail(step, start, FailureClass.SPAM_REJECTED, detail, code=reply.code)
        return self._fail(step, start, failure, f"rejected: {reply}", code=reply.code)

    # -- the steps -------------------------------------------------------------------------

    async def _introduce(self) -> None:
        """Choose the EHLO name; say when the identity will not pass an email filter's checks."""
        spec = self.spec
        fqdn = ""
        if not spec.ehlo:
            loop = asyncio.get_running_loop()
            try:
                async with asyncio.timeout(spec.timeout):
                    fqdn = await loop.run_in_executor(None, socket.getfqdn)
            except (TimeoutError, OSError):
                fqdn = socket.gethostname()
        self.ehlo = _one_line(ehlo_name(spec, machine_fqdn=fqdn))
        sender = envelope_sender(spec.transaction) if spec.transaction is not None else None
        self.warnings.extend(sender_warnings(ehlo=self.ehlo, mail_from=sender))

    async def _resolve(self) -> list[str]:
        host = self.spec.host
        if _is_ip(host):
            return [host]
        start = time.monotonic()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.spec.timeout):
                infos = await loop.getaddrinfo(host, self.spec.port, type=socket.SOCK_STREAM)
        except TimeoutError:
            raise self._fail(
                "dns", start, FailureClass.DNS, f"no answer for {host} within {self.spec.timeout:g} s"
            ) from None
        except (OSError, UnicodeError) as exc:  # gaierror; UnicodeError: not a valid IDNA name
            raise self._fail("dns", start, FailureClass.DNS, f"cannot resolve {host}: {exc}") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses:
            raise self._fail("dns", start, FailureClass.DNS, f"no address for {host}")
        self._record("dns", start, ok=True, detail=f"{host} -> {', '.join(addresses)}")
        return addresses

    async def _reach_vantage(self, vantage: Vantage) -> None:
        start = time.monotonic()
        self._note(f"=== Starting from the vantage {vantage.label}")
        try:
            async with asyncio.timeout(self.spec.timeout):
                detail = await vantage.reach()
        except TimeoutError:
            detail = f"{vantage.label}: no answer within {self.spec.timeout:g} s"
            raise self._fail("vantage", start, FailureClass.VANTAGE_FAILED, detail) from None
        except VantageFailed as exc:
            raise self._vantage_failed("vantage", start, exc) from None
        if detail is not None:
            self._record("vantage", start, ok=True, detail=detail)

    def _vantage_failed(self, step: str, start: float, exc: VantageFailed) -> _StepFailed:
        failed = self._fail(step, start, FailureClass.VANTAGE_FAILED, exc.detail)
        failed.permanent = exc.permanent
        return failed

    async def _open(self, address: str, port: int) -> Wire:
        loop = asyncio.get_running_loop()
        if self.vantage is None:
            _, wire = await loop.create_connection(Wire, address, port)
            return wire
        sock = await self.vantage.open(address, port)
        _, wire = await loop.create_connection(Wire, sock=sock)
        return wire

    async def _connect(self, addresses: list[str]) -> None:
        """TCP to each address in turn; the last error names the failure."""
        port = self.spec.port
        via = f" via {self.vantage.label}" if self.vantage is not None else ""
        if self.vantage is not None:
            await self._reach_vantage(self.vantage)
            if not _is_ip(self.spec.host):
                self._note(f"=== {self.spec.host} is resolved at the vantage, as outside senders resolve it")
        start = time.monotonic()
        failure, detail = FailureClass.REFUSED, "no address"
        for address in addresses:
            self._note(f"=== Trying {_hostport(address, port)}{via}...")
            try:
                async with asyncio.timeout(self.spec.timeout):
                    self.wire = await self._open(address, port)
            except VantageFailed as exc:
                raise self._vantage_failed("connect", start, exc) from None
            except TimeoutError:
                failure, detail = FailureClass.CONNECT_TIMEOUT, f"no answer within {self.spec.timeout:g} s"
            except ConnectionRefusedError as exc:
                # A vantage's refusal carries its own words (ssh -D hanging up, say).
                told = exc.strerror if self.vantage is not None and exc.strerror else "connection refused"
                failure, detail = FailureClass.REFUSED, told
            except OSError as exc:  # unreachable, no route: an immediate error, like a refusal
                failure, detail = FailureClass.REFUSED, exc.strerror or str(exc)
            else:
                self._note(f"=== Connected to {address}{via}.")
                self._record("connect", start, ok=True, detail=_hostport(address, port) + via)
                return
            self._note(f"*** Error connecting to {_hostport(address, port)}: {detail}")
        raise self._fail("connect", start, failure, detail)

    async def _banner(self) -> None:
        start = time.monotonic()
        reply = await self._say(
            "banner",
            start,
            None,
            FailureClass.BANNER_TIMEOUT,
            closed_as=FailureClass.CLOSED_BEFORE_BANNER,
            garbled_as=FailureClass.BAD_BANNER,
        )
        # 421 is transient (busy, FortiOS server-busy) and retried; 554 and the rest are not.
        self._expect("banner", start, reply, (220,), FailureClass.BAD_BANNER)
        self.banner_ms = _ms(start)

    async def _ehlo(self, step: str, failure: FailureClass, *, helo_fallback: bool) -> None:
        name = self.ehlo
        start = time.monotonic()
        reply = await self._say(step, start, f"EHLO {name}", failure)
        if reply.code == 250:
            self._record(step, start, ok=True, detail=str(reply))
            self.extensions = _extensions(reply)
            return
        if spam_reply(reply.code, " ".join(reply.lines)) or not (helo_fallback and 500 <= reply.code < 600):
            raise self._rejected(step, start, reply, failure)
        # A 5xx to EHLO: old or strict servers still take HELO, as sending MTAs then fall back.
        self._record(step, start, ok=False, detail=f"rejected: {reply}")
        start = time.monotonic()
        helo = await self._say("helo", start, f"HELO {name}", failure)
        self._expect("helo", start, helo, (250,), failure)
        self.extensions = {}
        self.warnings.append(f"EHLO rejected ({reply}); HELO accepted, so no ESMTP extensions")

    async def _starttls(self) -> bool:
        """True when the server agreed to STARTTLS; False for opportunistic without it."""
        start = time.monotonic()
        if not self.starttls_advertised:
            if self.spec.mode == "opportunistic":
                self._note("=== STARTTLS not advertised; continuing in plain text (opportunistic)")
                return False
            raise self._fail("starttls", start, FailureClass.STARTTLS_MISSING, "STARTTLS not advertised")
        assert self.wire is not None
        reply = await self._say("starttls", start, "STARTTLS", FailureClass.STARTTLS_REFUSED)
        self._expect("starttls", start, reply, (220,), FailureClass.STARTTLS_REFUSED)
        injected = self.wire.pending()
        if injected:
            # Anything sent before the handshake would be read as a reply from inside TLS.
            detail = (
                f"{len(injected)} byte(s) sent after the 220, before the TLS handshake: {injected[:60]!r}"
            )
            self.steps[-1] = replace(self.steps[-1], ok=False, detail=detail)
            raise _StepFailed(
                FailureClass.STARTTLS_INJECTION,
                f"starttls: {detail}",
                permanent=is_permanent(FailureClass.STARTTLS_INJECTION),
            )
        return True

    async def _tls(self) -> None:
        assert self.wire is not None
        spec = self.spec
        server_name = spec.server_name or (None if _is_ip(spec.host) else spec.host)
        start = time.monotonic()
        try:
            # The handshake's own timeout is a little longer so that ours always decides.
            async with asyncio.timeout(spec.timeout):
                await self.wire.start_tls(
                    _tls_context(), server_hostname=server_name, timeout=spec.timeout + 1
                )
        except TimeoutError:
            raise self._fail(
                "tls", start, FailureClass.TLS_FAILED, f"no handshake within {spec.timeout:g} s"
            ) from None
        except (OSError, ConnectionClosed) as exc:  # ssl.SSLError is an OSError
            raise self._fail("tls", start, FailureClass.TLS_FAILED, f"handshake failed: {exc}") from None
        self.in_tls = True
        self._check_peer(start)

    def _check_peer(self, start: float) -> None:
        assert self.wire is not None
        tls = self.wire.ssl_object()
        der = tls.getpeercert(binary_form=True) if tls is not None else None
        if tls is None or der is None:
            raise self._fail("tls", start, FailureClass.CERTIFICATE_INVALID, "the server sent no certificate")
        try:
            cert = read_cert(der)
        except ValueError as exc:
            raise self._fail(
                "tls", start, FailureClass.CERTIFICATE_INVALID, f"unreadable certificate: {exc}"
            ) from None
        cipher = tls.cipher()
        version = tls.version() or "?"
        self.peer_sha256 = cert.sha256
        self.peer_issuer = cert.issuer_cn or cert.issuer
        self._note(f"=== TLS started with cipher {version}:{cipher[0] if cipher else '?'}")
        self._note(f'=== TLS peer subject DN="{cert.subject}"')
        self._note(f'=== TLS peer issuer DN="{cert.issuer}"')
        self._note(f"=== TLS peer notAfter {cert.not_after.isoformat()} sha256 {cert.sha256}")
        if looks_like_inspection_ca(cert.issuer):
            self.warnings.append(
                f"certificate issued by an inspection CA ({self.peer_issuer}), not the server's own"
            )
        problem = check_cert(
            cert, server_name=self.spec.server_name, pin_sha256=self.pin, now=datetime.now(UTC)
        )
        if problem is None and self.spec.verify_chain is not False:
            problem = self._check_chain()
        if problem is not None:
            raise self._fail("tls", start, problem.failure, problem.detail)
        detail = (
            f"{version} {cipher[0] if cipher else '?'}; subject {cert.subject}; issuer {cert.issuer}; "
            f"notAfter {cert.not_after.isoformat()}; sha256 {cert.sha256}"
        )
        self._record("tls", start, ok=True, detail=detail)

    def _check_chain(self) -> CertProblem | None:
        assert self.spec.server_name is not None, "ProbeSpec requires it with verify_chain"
        try:
            trust = load_trust(self.spec.verify_chain)
        except ValueError as exc:
            return CertProblem(FailureClass.CHAIN_UNTRUSTED, str(exc))
        assert self.wire is not None
        chain = self.wire.peer_chain()
        self._note(f"=== TLS peer sent {len(chain)} certificate(s)")
        return check_chain(
            chain,
            server_name=self.spec.server_name,
            trust=trust,
            now=datetime.now(UTC),
            against=trust_label(self.spec.verify_chain),
        )

    async def _auth(self, username: str, password: str) -> None:
        start = time.monotonic()
        if not self.in_tls:
            raise self._fail(
                "auth", start, FailureClass.STARTTLS_MISSING, "credentials are only ever sent inside TLS"
            )
        mechanisms = self.extensions.get("AUTH", "").upper().split()
        failure = FailureClass.AUTH_REJECTED
        if "PLAIN" in mechanisms:
            token = base64.b64encode(f"\0{username}\0{password}".encode()).decode("ascii")
            reply = await self._say("auth", start, f"AUTH PLAIN {token}", failure, shown="AUTH PLAIN ***")
        elif "LOGIN" in mechanisms:
            reply = await self._say("auth", start, "AUTH LOGIN", failure)
            for secret in (username, password):
                if reply.code != 334:
                    break
                encoded = base64.b64encode(secret.encode()).decode("ascii")
                reply = await self._say("auth", start, encoded, failure, shown="***")
        else:
            offered = " ".join(mechanisms) or "none"
            raise self._fail("auth", start, failure, f"no AUTH PLAIN or LOGIN offered (offered: {offered})")
        self._expect("auth", start, reply, (235,), failure)

    async def _transaction(self, transaction: ProbeTransaction) -> None:
        envelope = FailureClass.ENVELOPE_REJECTED
        start = time.monotonic()
        sender = _one_line(envelope_sender(transaction))
        reply = await self._say("mail", start, f"MAIL FROM:<{sender}>", envelope)
        self._expect("mail", start, reply, (250,), envelope)
        start = time.monotonic()
        reply = await self._say("rcpt", start, f"RCPT TO:<{_one_line(transaction.rcpt_to)}>", envelope)
        self._expect("rcpt", start, reply, (250, 251), envelope)
        start = time.monotonic()
        reply = await self._say("data", start, "DATA", FailureClass.DATA_REJECTED)
        self._expect("data", start, reply, (354,), FailureClass.DATA_REJECTED)
        await self._send_message(transaction)

    async def _send_message(self, transaction: ProbeTransaction) -> None:
        unique = uuid.uuid4().hex
        domain = envelope_sender(transaction).rpartition("@")[2] or "localhost"
        self.message_id = f"<fortiauto-probe-{unique}@{_one_line(domain)}>"
        self.subject = f"fortiauto probe {_one_line(self.subject_token or unique)}"
        lines = _message(transaction=transaction, message_id=self.message_id, subject=self.subject)
        assert self.wire is not None
        start = time.monotonic()
        for line in lines:
            # RFC 5321 §4.5.2 dot-stuffing, so a line of "." can't end the message early.
            stuffed = "." + line if line.startswith(".") else line
            self._send(stuffed)
        # The final reply is where a buffering proxy (AV without splice) makes the sender wait.
        reply = await self._say("dot", start, ".", FailureClass.AFTER_DOT)
        self._expect("dot", start, reply, (250,), FailureClass.AFTER_DOT)

    async def _quit(self) -> None:
        start = time.monotonic()
        try:
            reply = await self._exchange("QUIT")
        except _NoReply as exc:
            # Mail already flowed; a server that hangs up without 221 is rude, not broken.
            self._record("quit", start, ok=False, detail=exc.detail)
            self.warnings.append(f"QUIT: {exc.detail}")
            return
        self._record("quit", start, ok=reply.code == 221, detail=str(reply))
