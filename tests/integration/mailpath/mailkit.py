"""Real mail servers for the mail-path tests: a Dovecot IMAP server and a private Postfix MTA.

Both run as their own processes from Debian's packages (``dovecot-imapd``, ``postfix``),
configured from scratch in a temporary directory, bound to 127.0.0.1. Neither can be told to
pick its own port and report it, so each listener gets a port the OS picked a moment before
(bound to port 0, then released). The mail store is one Maildir that the lab (``--maildir``),
Postfix and Dovecot share, owned by ``nobody`` because Dovecot refuses mail access as root.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fortiauto.site.models import Device, ImapConfirm, MailServer, ProbeSpec
from fortiauto_lab.pki import CertKey, issue_cert, make_ca

SBIN = os.pathsep.join(["/usr/sbin", "/usr/bin", "/sbin", os.environ.get("PATH", "")])
MAIL_USER = "nobody"  # an unprivileged account every Debian system has
MAIL_GROUP = "nogroup"
START_TIMEOUT = 20.0


def binary(name: str) -> str | None:
    return shutil.which(name, path=SBIN)


def free_port() -> int:
    """A port the OS just picked on 127.0.0.1 (released for the server to take)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(
    port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = START_TIMEOUT
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = log.read_text(errors="replace") if log.exists() else ""
            raise AssertionError(f"server exited with {proc.returncode} before listening:\n{text[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def stop(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


@dataclass
class MailStore:
    """A Maildir (``new/ cur/ tmp/``) readable and writable by the mail account, under ``root``."""

    root: Path

    @property
    def maildir(self) -> Path:
        return self.root / "Maildir"

    def files(self) -> list[Path]:
        return sorted([*(self.maildir / "new").iterdir(), *(self.maildir / "cur").iterdir()])

    def holding(self, text: str) -> list[Path]:
        return [p for p in self.files() if text.encode() in p.read_bytes()]


@contextlib.contextmanager
def mail_store() -> Iterator[MailStore]:
    # Not under pytest's tmp_path: its parents are 0700, which the mail account cannot traverse.
    root = Path(tempfile.mkdtemp(prefix="fortiauto-mail-"))
    try:
        root.chmod(0o755)
        account = pwd.getpwnam(MAIL_USER)
        for path in (root / "Maildir", *(root / "Maildir" / d for d in ("new", "cur", "tmp")), root / "home"):
            path.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:  # the servers need it; a lab-only test runs as anyone
                os.chown(path, account.pw_uid, account.pw_gid)
        yield MailStore(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Tls:
    """A CA and a server certificate for 127.0.0.1 / localhost / NAME, written as PEM files."""

    ca: CertKey
    ca_path: Path
    cert_path: Path
    key_path: Path


def make_tls(directory: Path, name: str) -> Tls:
    directory.mkdir(parents=True, exist_ok=True)
    ca = make_ca(f"{name} test CA")
    leaf = issue_cert(ca, name, sans=(name, "localhost", "127.0.0.1"), key_type="rsa")
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    ca_path.write_text(ca.cert_pem)
    cert_path.write_text(leaf.cert_pem)
    key_path.write_text(leaf.key_pem)
    key_path.chmod(0o600)
    return Tls(ca, ca_path, cert_path, key_path)


@dataclass
class Dovecot:
    """A running Dovecot: STARTTLS on ``imap_port``, implicit TLS on ``imaps_port``, one user."""

    proc: subprocess.Popen[bytes]
    log: Path
    tls: Tls
    store: MailStore
    imap_port: int
    imaps_port: int
    username: str
    password: str

    def url(self, *, implicit: bool = True) -> str:
        return f"imaps://127.0.0.1:{self.imaps_port}" if implicit else f"imap://127.0.0.1:{self.imap_port}"

    def logins(self) -> int:
        """Successful logins Dovecot itself logged (the server's word, not the client's)."""
        return self.log.read_text(errors="replace").count(f"Login: user=<{self.username}>")

    def session(self) -> imaplib.IMAP4_SSL:
        """A client session of the test's own (to look into the mailbox)."""
        context = ssl.create_default_context(cafile=str(self.tls.ca_path))
        client = imaplib.IMAP4_SSL("127.0.0.1", self.imaps_port, ssl_context=context, timeout=10)
        client.login(self.username, self.password)
        client.select("INBOX")
        return client


_DOVECOT_CONF = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {log}
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = yes
auth_mechanisms = {mechanisms}
# The master runs as root here; its helpers run as accounts that exist on any Debian system.
default_internal_user = {mail_user}
default_internal_group = {mail_group}
default_login_user = {mail_user}
first_valid_uid = 1
mail_location = maildir:{maildir}
passdb {{
  driver = passwd-file
  args = {root}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_group} home={home}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
"""


@contextlib.contextmanager
def dovecot(
    store: MailStore,
    username: str = "probe",
    password: str = "imap-pw-CANARY-7d1e",
    mechanisms: str = "plain login",
) -> Iterator[Dovecot]:
    """``dovecot -F -c <generated config>`` serving ``store``'s Maildir as ``username``'s INBOX."""
    exe = binary("dovecot")
    assert exe is not None, "dovecot is not installed"
    root = store.root / "dovecot"
    root.mkdir()
    tls = make_tls(root / "tls", "imap.example.test")
    (root / "passwd").write_text(f"{username}:{{PLAIN}}{password}\n")
    (root / "passwd").chmod(0o600)
    account = pwd.getpwnam(MAIL_USER)
    os.chown(root / "passwd", account.pw_uid, account.pw_gid)  # read by Dovecot's auth process
    log = root / "dovecot.log"
    for attempt in range(3):
        imap_port, imaps_port = free_port(), free_port()
        conf = root / "dovecot.conf"
        conf.write_text(
            _DOVECOT_CONF.format(
                mechanisms=mechanisms,
                root=root,
                log=log,
                cert=tls.cert_path,
                key=tls.key_path,
                mail_user=MAIL_USER,
                mail_group=MAIL_GROUP,
                maildir=store.maildir,
                home=store.root / "home",
                imap_port=imap_port,
                imaps_port=imaps_port,
            )
        )
        with (root / "stderr.log").open("ab") as stderr:
            proc = subprocess.Popen([exe, "-F", "-c", str(conf)], stdin=subprocess.DEVNULL, stderr=stderr)
        try:
            wait_for_port(imap_port, proc, log)
            wait_for_port(imaps_port, proc, log)
            break
        except AssertionError:
            stop(proc)
            if attempt == 2:
                raise
    try:
        yield Dovecot(proc, log, tls, store, imap_port, imaps_port, username, password)
    finally:
        stop(proc)


def probe_id() -> str:
    """A Message-ID shaped like the probe's (probe/smtp.py)."""
    return f"<fortiauto-probe-{secrets.token_hex(8)}@fortiauto.invalid>"


def imap_spec(server: Dovecot, **overrides: Any) -> ImapConfirm:
    fields: dict[str, Any] = {
        "url": server.url(),
        "username": server.username,
        "password": server.password,
        "mailbox": "INBOX",
        "timeout": 5,
        "verify_tls": server.tls.ca_path,
    }
    fields.update(overrides)
    return ImapConfirm.model_validate(fields)


def mail_server_with(spec: ImapConfirm | None) -> tuple[Device, MailServer]:
    """The two site objects a DeliveryCheck reads, with only what it reads filled in."""
    probe = ProbeSpec(host="127.0.0.1", port=25, confirm_delivery=spec)
    server = MailServer.model_construct(name="mx1", probe=probe)
    device = Device.model_construct(name="fgt-imap", mail_servers=(server,))
    return device, server


# -- Postfix -------------------------------------------------------------------------------

_POSTFIX_MAIN = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = {hostname}
mydomain = example.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
# Every recipient at example.test lands in the one shared Maildir, as the mail account.
virtual_mailbox_domains = example.test
virtual_mailbox_base = {store}
virtual_mailbox_maps = static:Maildir/
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
virtual_minimum_uid = 1
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_security_level = may
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
maillog_file_prefixes = {root}
maillog_file = {log}
smtputf8_enable = no
biff = no
append_dot_mydomain = no
"""

# Only what an inbound MTA delivering locally needs; nothing chrooted (no /var/spool copies).
_POSTFIX_MASTER = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
virtual   unix  - n n - - virtual
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


@dataclass
class Postfix:
    """A private Postfix instance: SMTP (with STARTTLS) on ``port``, delivering into the Maildir."""

    proc: subprocess.Popen[bytes]
    config_dir: Path
    log: Path
    port: int
    hostname: str

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def delivered(self, message_id: str) -> bool:
        """Postfix's own word that it queued ``message_id`` and its virtual agent delivered it."""
        text = self.log_text()
        queue_ids = [
            line.split(": ")[1]
            for line in text.splitlines()
            if f"message-id={message_id}" in line and "cleanup" in line
        ]
        return any(
            f"{qid}: to=" in line and "status=sent (delivered to maildir)" in line
            for qid in queue_ids
            for line in text.splitlines()
        )


def _postfix_command(exe: str, config_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [exe, "-c", str(config_dir), *args], capture_output=True, text=True, timeout=60, check=False
    )


@contextlib.contextmanager
def postfix(store: MailStore, tls: Tls, hostname: str = "mx1.example.test") -> Iterator[Postfix]:
    """``postfix -c DIR start-fg`` with its own config, queue and data directories under ``store``."""
    exe = binary("postfix")
    assert exe is not None, "postfix is not installed"
    root = store.root / "postfix"
    config_dir, queue, data = root / "etc", root / "queue", root / "data"
    for path in (config_dir, queue, data):
        path.mkdir(parents=True)
    account = pwd.getpwnam(MAIL_USER)
    os.chown(data, pwd.getpwnam("postfix").pw_uid, -1)
    log = root / "postfix.log"
    (config_dir / "main.cf").write_text(
        _POSTFIX_MAIN.format(
            root=root,
            hostname=hostname,
            store=store.root,
            uid=account.pw_uid,
            gid=account.pw_gid,
            cert=tls.cert_path,
            key=tls.key_path,
            log=log,
        )
    )
    for attempt in range(3):  # the port may be taken between picking and binding it
        port = free_port()
        (config_dir / "master.cf").write_text(_POSTFIX_MASTER.format(port=port))
        # "check" creates the queue's subdirectories with the owners Postfix wants.
        checked = _postfix_command(exe, config_dir, "check")
        assert checked.returncode == 0, (
            f"postfix check failed: {checked.stderr}{log.read_text() if log.exists() else ''}"
        )
        with (root / "stderr.log").open("ab") as stderr:
            proc = subprocess.Popen(
                [exe, "-c", str(config_dir), "start-fg"],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
            )
        try:
            wait_for_port(port, proc, log)
            break
        except AssertionError:
            _postfix_command(exe, config_dir, "stop")
            stop(proc)
            if attempt == 2:
                raise
    try:
        yield Postfix(proc, config_dir, log, port, hostname)
    finally:
        _postfix_command(exe, config_dir, "stop")
        stop(proc)
