"""Throwaway sshd's on 127.0.0.1 that let the unprivileged `deploy` user in."""

from __future__ import annotations

import ctypes
import signal
import subprocess
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .proc import DEPLOY_USER, _port_free, run, stop_process, tail

SSHD = "/usr/sbin/sshd"  # sshd insists on an absolute path (it re-execs itself)


FIRST_PORT = 22201


@dataclass
class SshHost:
    """One throwaway sshd on 127.0.0.1 that accepts `deploy` with the session's client key."""

    name: str
    port: int
    key: Path  # private client key (root-owned, 0600)
    known_hosts: Path
    log: Path  # the sshd's own log (-E), LogLevel VERBOSE
    hostname: str = "127.0.0.1"
    user: str = DEPLOY_USER

    def _count(self, marker: str) -> int:
        try:
            return self.log.read_text(errors="replace").count(marker)
        except FileNotFoundError:
            return 0

    def connections(self) -> int:
        """Authenticated SSH connections so far (pyinfra opens one per host per run)."""
        return self._count("Accepted publickey for ")

    def sessions(self) -> int:
        """Exec/shell sessions so far: one per pyinfra fact or command (round trips)."""
        return self._count("Starting session: ")

    def ssh_argv(self, command: str) -> list[str]:
        """OpenSSH client argv for `command` on this host; ignores ~/.ssh entirely."""
        return [
            "ssh", "-F", "/dev/null", "-i", str(self.key), "-p", str(self.port),
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes",
            f"{self.user}@{self.hostname}", command,
        ]  # fmt: skip

    def ssh(self, command: str, *, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run `command` on the host as deploy over a real ssh connection; raises on rc != 0."""
        return run(self.ssh_argv(command), timeout=timeout)

    def pyinfra_data(self) -> dict[str, Any]:
        """Host data for a plain pyinfra inventory (strict host keys, no agent or ~/.ssh keys)."""
        return {
            "ssh_hostname": self.hostname,
            "ssh_port": self.port,
            "ssh_user": self.user,
            "ssh_key": str(self.key),
            "ssh_known_hosts_file": str(self.known_hosts),
            "ssh_strict_host_key_checking": "yes",
            "ssh_allow_agent": False,
            "ssh_look_for_keys": False,
        }


@dataclass
class SshServer:
    """A running sshd (`host` describes how to reach it); `stop()` is idempotent."""

    host: SshHost
    proc: subprocess.Popen[bytes]
    config: Path = field(repr=False)

    def stop(self, timeout: float = 5) -> None:
        stop_process(self.proc, timeout)


def make_ssh_keys(keydir: Path) -> tuple[Path, Path]:
    """Client key + host key in `keydir` (0711: deploy's sshd child must read authorized_keys)."""
    keydir.mkdir(parents=True, exist_ok=True)
    keydir.chmod(0o711)
    client, hostkey = keydir / "id_ed25519", keydir / "ssh_host_ed25519_key"
    for path, comment in ((client, "atomic-deploy-tests"), (hostkey, "atomic-deploy-test-host")):
        if not path.exists():
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    authorized = keydir / "authorized_keys"
    authorized.write_text(client.with_suffix(".pub").read_text())
    authorized.chmod(0o644)
    return client, hostkey


_LIBC = ctypes.CDLL(None, use_errno=True)


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # If pytest is killed hard, the kernel sends the sshd SIGTERM instead of leaving it listening.
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _wait_listening(log: Path, port: int, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """True once the sshd logged that it listens; False if it exited (e.g. port raced away)."""
    marker = f"Server listening on 127.0.0.1 port {port}."
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and marker in log.read_text(errors="replace"):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    raise AssertionError(f"sshd on port {port} not up after {timeout}s:\n{tail(log.read_text())}")


def start_sshd(
    workdir: Path,
    name: str,
    *,
    client_key: Path,
    host_key: Path,
    known_hosts: Path,
    skip_ports: Collection[int] = (),
    timeout: float = 10,
    extra_config: str = "",
) -> SshServer:
    """Start `sshd -D` for `name` on the first free port >= FIRST_PORT and add it to known_hosts.

    Its config, pid file and log live in `workdir`. Only `deploy` may log in, by public key.
    `extra_config` is appended to the sshd config (e.g. "SetEnv PATH=/somewhere\n").
    """
    Path("/run/sshd").mkdir(exist_ok=True)  # privsep dir; /run is a tmpfs
    authorized = client_key.parent / "authorized_keys"
    port = FIRST_PORT
    for _attempt in range(50):  # bounded: ports taken by other sessions are skipped
        while port in skip_ports or not _port_free(port):
            port += 1
        config, log = workdir / f"sshd-{name}.conf", workdir / f"sshd-{name}.log"
        config.write_text(
            f"Port {port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {host_key}\n"
            f"PidFile {workdir / f'sshd-{name}.pid'}\n"
            f"AuthorizedKeysFile {authorized}\n"
            "LogLevel VERBOSE\n"
            "UsePAM no\n"
            "StrictModes no\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PubkeyAuthentication yes\n"
            "PermitRootLogin no\n"
            f"AllowUsers {DEPLOY_USER}\n"
            "MaxStartups 50\n"
            "MaxSessions 50\n"
            "UseDNS no\n"
            "PrintMotd no\n"
            "PrintLastLog no\n"
            "Subsystem sftp internal-sftp\n" + extra_config
        )
        log.write_text("")  # truncate: counts start at zero for this server
        proc = subprocess.Popen(  # noqa: S603 - fixed argv
            [SSHD, "-D", "-f", str(config), "-E", str(log)],
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        if _wait_listening(log, port, proc, timeout):
            hostkey_pub = host_key.with_suffix(".pub").read_text().split()
            with known_hosts.open("a") as f:
                f.write(f"[127.0.0.1]:{port} {hostkey_pub[0]} {hostkey_pub[1]}\n")
            host = SshHost(name=name, port=port, key=client_key, known_hosts=known_hosts, log=log)
            return SshServer(host=host, proc=proc, config=config)
        port += 1  # lost a race for the port: try the next one
    raise AssertionError(f"could not start sshd for {name}; last log:\n{tail(log.read_text())}")
