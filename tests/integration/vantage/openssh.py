"""Real OpenSSH peers for the probe's vantage: Debian's sshd, and ``ssh -D`` as a SOCKS5 proxy.

``running_sshd`` generates a host key and a user key, writes an sshd_config for 127.0.0.1
on a free port (public keys only, no PAM, StrictModes off since tests run as root in tmp
dirs) and runs ``sshd -D -e`` with ``LogLevel DEBUG1``, whose log names every
``direct-tcpip`` channel and its target: the proof that the probe's connection really
came from the SSH host. ``running_socks`` is OpenSSH's dynamic forwarding (RFC 1928
SOCKS5) through that sshd, logged with ``-v``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = shutil.which("sshd", path="/usr/sbin:/usr/local/sbin:" + os.environ.get("PATH", ""))
SSH = shutil.which("ssh")
SSH_KEYGEN = shutil.which("ssh-keygen")

needs_openssh = pytest.mark.skipif(
    not (SSHD and SSH and SSH_KEYGEN),
    reason="OpenSSH not installed (apt-get install openssh-server openssh-client; .ci/run does)",
)

_TARGET = re.compile(r"server_request_direct_tcpip: originator (\S*) port (\d+), target (\S+) port (\d+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def keygen(path: Path, *, passphrase: str = "") -> Path:
    assert SSH_KEYGEN is not None
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", passphrase, "-C", "fortiauto-test", "-f", str(path)],
        check=True,
    )
    return path


@dataclass
class Sshd:
    port: int
    user: str
    user_key: Path
    known_hosts: Path
    host_key_pub: Path
    log: Path
    folder: Path

    @property
    def ssh(self) -> str:
        return f"{self.user}@127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def forwarded(self) -> list[tuple[str, int, str, int]]:
        """Every direct-tcpip channel sshd opened: (originator, its port, target, target port)."""
        return [(a, int(b), c, int(d)) for a, b, c, d in _TARGET.findall(self.log_text())]

    def known_hosts_line(self, pub: Path | None = None) -> str:
        algorithm, key = (pub or self.host_key_pub).read_text().split()[:2]
        return f"[127.0.0.1]:{self.port} {algorithm} {key}\n"


def _wait_for(predicate: object, what: str, timeout: float = 10.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def running_sshd(folder: Path, *, allow_forwarding: bool = True) -> Iterator[Sshd]:
    assert SSHD is not None
    folder.mkdir(parents=True, exist_ok=True)
    host_key = keygen(folder / "host_ed25519")
    user_key = keygen(folder / "user_ed25519")
    (folder / "authorized_keys").write_text((folder / "user_ed25519.pub").read_text())
    port = free_port()
    config = folder / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"PidFile {folder / 'sshd.pid'}",
                f"AuthorizedKeysFile {folder / 'authorized_keys'}",
                "StrictModes no",
                "UsePAM no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "PermitRootLogin prohibit-password",
                f"AllowTcpForwarding {'yes' if allow_forwarding else 'no'}",
                "LogLevel DEBUG1",
                "",
            ]
        )
    )
    if os.geteuid() == 0:
        # sshd started as root insists on its privilege-separation directory (Debian's unit creates it).
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    log = folder / "sshd.log"
    known_hosts = folder / "known_hosts"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)], stdout=sink, stderr=subprocess.STDOUT
        )
    server = Sshd(
        port=port,
        user=os.environ.get("USER") or _whoami(),
        user_key=user_key,
        known_hosts=known_hosts,
        host_key_pub=folder / "host_ed25519.pub",
        log=log,
        folder=folder,
    )
    known_hosts.write_text(server.known_hosts_line())
    try:
        _wait_for(
            lambda: "Server listening" in server.log_text() or process.poll() is not None, "sshd to listen"
        )
        assert process.poll() is None, server.log_text()
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _whoami() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


@dataclass
class Socks:
    port: int
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def relayed_to(self, port: int) -> int:
        """How many SOCKS connections ssh relayed to ``port`` (its own -v log lines)."""
        return len(
            re.findall(rf"direct-tcpip: listening port {self.port} for \S+ port {port},", self.log_text())
        )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@contextlib.contextmanager
def running_socks(server: Sshd) -> Iterator[Socks]:
    """``ssh -N -D`` against ``server``: a real SOCKS5 proxy whose connections leave from the sshd."""
    assert SSH is not None
    port = free_port()
    log = server.folder / f"ssh-D-{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                SSH,
                "-v",
                "-N",
                "-D",
                f"127.0.0.1:{port}",
                "-i",
                str(server.user_key),
                "-o",
                f"UserKnownHostsFile={server.known_hosts}",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "ExitOnForwardFailure=yes",
                "-F",
                "/dev/null",
                "-p",
                str(server.port),
                f"{server.user}@127.0.0.1",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    socks = Socks(port=port, log=log)
    try:
        # Waiting on the log, not on a test connection, keeps the proxy's log to the probe's own.
        listening = f"Local forwarding listening on 127.0.0.1 port {port}"
        _wait_for(lambda: listening in socks.log_text() or process.poll() is not None, "ssh -D to listen")
        assert process.poll() is None, socks.log_text()
        yield socks
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
