"""Test helpers: throwaway sshd's, an example site repo, client files, pyinfra runs, snapshots.

Everything here runs as root (CI does); the deployed-to "servers" are sshd's on 127.0.0.1 that
only let the unprivileged `deploy` user in (see scripts/test-env.sh for the machine setup).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
# Deploy roots must sit where `deploy` can create directories and traverse every parent,
# which rules out pytest's tmp_path (/tmp/pytest-of-root is 0700).
TEST_ROOT = Path("/srv/atomic-deploy-tests")
DEPLOY_USER = "deploy"
SSHD = "/usr/sbin/sshd"  # sshd insists on an absolute path (it re-execs itself)
FIRST_PORT = 22201


def tail(text: str | bytes | None, lines: int = 60) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return "\n".join((text or "").splitlines()[-lines:])


def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """subprocess.run with captured text output, no stdin, and a readable error on failure."""
    kwargs.setdefault("timeout", 60)
    proc = subprocess.run(  # noqa: S603 - argv lists built by the tests themselves
        argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, **kwargs
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"{argv} failed with rc={proc.returncode}\n"
            f"--- stdout\n{tail(proc.stdout)}\n--- stderr\n{tail(proc.stderr)}"
        )
    return proc


# --------------------------------------------------------------------------- ssh hosts


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


def stop_process(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM `proc` if it still runs; SIGKILL it if it has not ended within `timeout`."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


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


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


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


# --------------------------------------------------------------------------- mariadb

MARIADBD = "/usr/sbin/mariadbd"
FIRST_DB_PORT = 23306
DB_USER = "craft"
# Quotes, a backslash, '#', '$' and a space: all must survive the option file. The distinctive
# DB_PASSWORD_MARK is what the leak tests look for in output and `ps`.
DB_PASSWORD_MARK = "adPw7q9Zk"
DB_PASSWORD = f"{DB_PASSWORD_MARK}\"x\\ y#z$'w"
DB_PRIVILEGES = "SELECT, SHOW VIEW, TRIGGER, LOCK TABLES, EVENT"  # no PROCESS, no global privs


@dataclass
class MariaDB:
    """A throwaway mariadbd (own datadir, socket, TCP port on 127.0.0.1) for the session.

    Root talks to it through the socket as the OS root (unix_socket auth). `DB_USER`, with
    `DB_PASSWORD`, may dump the databases granted by `create_database`.
    """

    port: int
    socket: Path
    workdir: Path
    proc: subprocess.Popen[bytes] = field(repr=False)

    def client_argv(self, database: str | None = None) -> list[str]:
        argv = ["mariadb", "--no-defaults", f"--socket={self.socket}", "--user=root", "--batch"]
        return [*argv, *([database] if database else [])]

    def sql(self, statements: str, database: str | None = None, timeout: float = 120) -> str:
        """Run SQL as root; returns the tab-separated output (no column names)."""
        argv = [*self.client_argv(database), "--skip-column-names", "-e", statements]
        return run(argv, timeout=timeout).stdout

    def create_database(self, name: str, privileges: str = DB_PRIVILEGES) -> str:
        """A fresh, empty database `name` that DB_USER may dump with `privileges`."""
        self.sql(
            f"DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}`;"
            f"GRANT {privileges} ON `{name}`.* TO '{DB_USER}'@'127.0.0.1', '{DB_USER}'@'localhost'"
        )
        return name

    def tables(self, database: str) -> dict[str, int]:
        """Table name -> exact row count."""
        names = self.sql(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
            " AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
            database,
        ).split()
        return {n: int(self.sql(f"SELECT COUNT(*) FROM `{n}`", database)) for n in names}

    def stop(self, timeout: float = 30) -> None:
        stop_process(self.proc, timeout)


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def free_port(first: int, skip: Collection[int] = ()) -> int:
    """The first port >= `first` that nobody listens on at 127.0.0.1 right now."""
    port = first
    while port in skip or not _port_free(port):
        port += 1
    return port


def start_mariadb(workdir: Path, timeout: float = 60) -> MariaDB:
    """mariadb-install-db + `mariadbd --user=mysql` on its own datadir, socket and port.

    Waits (bounded) until root can run a query, then creates DB_USER@127.0.0.1/localhost.
    """
    datadir, rundir = workdir / "data", workdir / "run"
    for d in (workdir, datadir, rundir):
        d.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o755)
    for d in (datadir, rundir):
        shutil.chown(d, "mysql", "mysql")
    rundir.chmod(0o755)  # deploy reaches the socket
    if not (datadir / "mysql").is_dir():
        run(
            ["mariadb-install-db", "--no-defaults", "--user=mysql", f"--datadir={datadir}",
             "--auth-root-authentication-method=socket", "--skip-test-db"],
            timeout=timeout,
        )  # fmt: skip
    port = free_port(FIRST_DB_PORT)
    socket_path, log = rundir / "mysqld.sock", rundir / "error.log"
    proc = subprocess.Popen(  # noqa: S603 - fixed argv
        [MARIADBD, "--no-defaults", "--user=mysql", f"--datadir={datadir}",
         f"--socket={socket_path}", f"--port={port}", "--bind-address=127.0.0.1",
         f"--pid-file={rundir / 'mysqld.pid'}", f"--log-error={log}", "--skip-name-resolve",
         "--skip-log-bin", "--innodb-buffer-pool-size=256M",
         "--innodb-flush-log-at-trx-commit=2"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    server = MariaDB(port=port, socket=socket_path, workdir=workdir, proc=proc)
    deadline = time.monotonic() + timeout
    while True:
        probe = subprocess.run(  # noqa: S603 - fixed argv
            [*server.client_argv(), "-e", "SELECT 1"], capture_output=True, timeout=10, check=False
        )
        if probe.returncode == 0:
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            text = log.read_text(errors="replace") if log.exists() else ""
            raise AssertionError(f"mariadbd did not come up on port {port}:\n{tail(text)}")
        time.sleep(0.1)
    password = _sql_string(DB_PASSWORD)
    server.sql(
        f"CREATE USER '{DB_USER}'@'127.0.0.1' IDENTIFIED BY {password};"
        f"CREATE USER '{DB_USER}'@'localhost' IDENTIFIED BY {password}"
    )
    return server


# --------------------------------------------------------------------------- test directories


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _unescape_mount(path: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def remove_stale_runs(base: Path = TEST_ROOT) -> None:
    """Delete `run-<pid>` dirs of test sessions that are gone, with what they left running.

    Left-overs of a killed session: processes started with paths inside the dir (sshd's,
    later mariadbd/nginx) and tmpfs mounts (disk-full tests). Live sessions are not touched,
    so two pytest runs on one machine don't destroy each other's state.
    """
    if not base.is_dir():
        return
    for run_dir in base.glob("run-*"):
        pid = run_dir.name.removeprefix("run-")
        if not pid.isdigit() or _alive(int(pid)):
            continue
        needle = str(run_dir).encode() + b"/"
        for proc in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError):
                if needle in (proc / "cmdline").read_bytes():
                    os.kill(int(proc.name), signal.SIGKILL)
        mounts = [_unescape_mount(line.split()[1]) for line in Path("/proc/mounts").open()]
        for mount in sorted((m for m in mounts if m.startswith(f"{run_dir}/")), reverse=True):
            subprocess.run(["umount", "-l", mount], check=False)  # noqa: S603 - fixed argv
        shutil.rmtree(run_dir, ignore_errors=True)


def chown_deploy(path: Path) -> None:
    shutil.chown(path, DEPLOY_USER, DEPLOY_USER)


def slug(text: str, limit: int = 60) -> str:
    """Readable, filesystem-safe and unique name for a test id (hash keeps it unique)."""
    digest = hashlib.sha1(text.encode()).hexdigest()[:8]
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', text)[:limit].strip('_')}-{digest}"


def as_deploy(
    command: str, *, check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run a shell command locally as `deploy` (drift a server the way its owner could)."""
    home = Path("~" + DEPLOY_USER).expanduser()
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
    # runuser lives in sbin, which that PATH lacks: resolve it with ours
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    argv = [runuser, "-u", DEPLOY_USER, "--", "sh", "-c", command]
    if check:
        return run(argv, cwd="/", env=env, timeout=timeout)
    return subprocess.run(  # noqa: S603 - fixed argv
        argv, cwd="/", env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


# --------------------------------------------------------------------------- example site


SITE_FILES: dict[str, str] = {
    "htdocs/index.php": (
        "<?php\n"
        "// Prints which release is live: the deploy must switch htdocs and VERSION together.\n"
        'echo "release " . trim(file_get_contents(__DIR__ . "/../VERSION")) . "\\n";\n'
    ),
    "htdocs/assets/app.css": "body { font-family: sans-serif; color: #222; }\n",
    "config/general.php": "<?php\nreturn ['site' => 'example', 'debug' => false];\n",
    "storage/.gitkeep": "",
    "content/seed.txt": "seed content: copied into shared/ by the first deploy only\n",
    "VERSION": "1\n",
}

GIT_AUTHOR = ("-c", "user.name=Atomic Deploy Tests", "-c", "user.email=tests@atomic-deploy.invalid")


@dataclass
class SiteRepo:
    """A git checkout of the example PHP site, made to be deployed."""

    path: Path

    def git(self, *args: str) -> str:
        # Hermetic: neither the machine's nor root's git config can change hashes or sign.
        env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}
        return run(["git", *GIT_AUTHOR, "-C", str(self.path), *args], env=env).stdout.strip()

    @classmethod
    def create(cls, path: Path, files: dict[str, str] | None = None) -> SiteRepo:
        path.mkdir(parents=True, exist_ok=True)
        repo = cls(path)
        repo.git("init", "-q", "-b", "main")
        repo.commit(SITE_FILES if files is None else files, "example site")
        return repo

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def sha_short(self, length: int = 12) -> str:
        """HEAD cut to `length` hex digits; 12 = the release dir names (release_name.SHA_LENGTH).

        Deliberately not `git rev-parse --short`, whose length grows with the repo.
        """
        return self.head()[:length]

    def commit(self, files: dict[str, str | None], message: str = "change") -> str:
        """Write (or, for None, delete) files, commit them all, and return the new full sha."""
        for rel, content in files.items():
            target = self.path / rel
            if content is None:
                target.unlink(missing_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(content)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "--no-gpg-sign", "-m", message)
        return self.head()


# --------------------------------------------------------------------------- client + pyinfra


CLIENT_PY = "from operations.config import inventory_hosts\nhosts = inventory_hosts(__file__)\n"


def _plain(value: Any) -> Any:
    """Paths -> str, recursively, so yaml.safe_dump accepts the structure."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def ssh_block(host: SshHost) -> dict[str, str]:
    """The client.yml `ssh:` section for the session's sshd's (shared by all three)."""
    return {"user": host.user, "key": str(host.key), "known_hosts": str(host.known_hosts)}


def host_entry(ssh_host: SshHost, root: Path | str, **extra: Any) -> dict[str, Any]:
    """One client.yml `hosts:` entry for an sshd of the session."""
    entry = {"name": ssh_host.name, "hostname": ssh_host.hostname, "port": ssh_host.port}
    return {**entry, "root": str(root), **extra}


def write_client(
    dir: Path, *, source: Path | str, hosts: list[dict[str, Any]], **options: Any
) -> Path:
    """Write `<dir>/client.yml` + the `<dir>/client.py` inventory that loads it; return the .py.

    `options` become top-level keys (keep_releases, exclude, shared_dirs, ...). `ssh` may be a
    dict or an SshHost (turned into `ssh_block(host)`); leave it out to test a missing section.
    """
    if isinstance(options.get("ssh"), SshHost):
        options["ssh"] = ssh_block(options["ssh"])
    ssh = options.pop("ssh", None)
    data = {"source": str(source), **options}
    if ssh is not None:
        data["ssh"] = ssh
    data["hosts"] = hosts
    dir.mkdir(parents=True, exist_ok=True)
    (dir / "client.yml").write_text(yaml.safe_dump(_plain(data), sort_keys=False))
    inventory = dir / "client.py"
    inventory.write_text(CLIENT_PY)
    return inventory


# run_pyinfra(env=CHECKS_OFF): no extra reads, for tests that count remote commands.
CHECKS_OFF = {"ATOMIC_DEPLOY_TESTS_NO_STATE_CHECK": "1"}
KNOWN_STATES_CHECK = "tests/known_states.py"


def run_pyinfra(
    inventory: Path | str,
    *args: str,
    timeout: float = 300,
    check: bool = False,
    env: dict[str, str] | None = None,
    deploy_file: str = "deploy.py",
) -> subprocess.CompletedProcess[str]:
    """`python -m pyinfra INVENTORY deploy.py *args` from the repo root, without stdin.

    `deploy_file` runs another deploy file of the repo (rollback.py, status.py, ...).

    Pass `-y` (or `--dry`): without it pyinfra prompts and dies on EOF with rc=1. `env` adds
    variables to the environment (e.g. a database password named by password_env).
    Every state an operation hands on instead of re-reading the host is checked against a
    fresh read (tests/known_states.py runs first); tests that count remote commands pass
    CHECKS_OFF (the variable only tells this function).
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **(env or {})}
    checks = [] if env.pop("ATOMIC_DEPLOY_TESTS_NO_STATE_CHECK", "") else [KNOWN_STATES_CHECK]
    argv = [sys.executable, "-m", "pyinfra", str(inventory), *checks, deploy_file, *args]
    try:
        proc = subprocess.run(  # noqa: S603 - argv built from the test's own arguments
            argv, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
    except subprocess.TimeoutExpired as e:
        raise AssertionError(
            f"pyinfra timed out after {timeout}s: {argv}\n"
            f"--- stdout\n{tail(e.stdout)}\n--- stderr\n{tail(e.stderr)}"
        ) from None
    if check and proc.returncode != 0:
        raise AssertionError(
            f"pyinfra rc={proc.returncode}: {argv}\n"
            f"--- stdout\n{tail(proc.stdout)}\n--- stderr\n{tail(proc.stderr)}"
        )
    return proc


def run_pyinfra_json(
    inventory: Path | str, *args: str, **options: Any
) -> tuple[subprocess.CompletedProcess[str], Any]:
    """run_pyinfra (same options) with `--json`; returns (process, parsed stdout).

    The JSON is None when a failed run printed none; a successful run without JSON is an error.
    """
    proc = run_pyinfra(inventory, *args, "--json", **options)
    try:
        return proc, json.loads(proc.stdout)
    except json.JSONDecodeError:
        if proc.returncode != 0 and not proc.stdout.strip():
            return proc, None
        raise AssertionError(
            f"pyinfra --json printed no JSON (rc={proc.returncode})\n"
            f"--- stdout\n{tail(proc.stdout)}\n--- stderr\n{tail(proc.stderr)}"
        ) from None


# --------------------------------------------------------------------------- snapshots


class Entry(NamedTuple):
    type: str  # "dir" | "file" | "link" | "other"
    mode: int  # permission bits
    size: int
    mtime_ns: int
    content: str | None  # link target, sha256 of a file, None otherwise
    owner: str  # "uid:gid"


def _entry(path: Path) -> Entry:
    st = path.lstat()
    content: str | None = None
    if stat.S_ISLNK(st.st_mode):
        kind, content = "link", os.readlink(path)
    elif stat.S_ISDIR(st.st_mode):
        kind = "dir"
    elif stat.S_ISREG(st.st_mode):
        kind, content = "file", hashlib.sha256(path.read_bytes()).hexdigest()
    else:
        kind = "other"
    owner = f"{st.st_uid}:{st.st_gid}"
    return Entry(kind, stat.S_IMODE(st.st_mode), st.st_size, st.st_mtime_ns, content, owner)


def tree_snapshot(path: Path | str) -> dict[str, Entry]:
    """Every path under `path` ("." = itself) -> Entry, without following symlinks.

    Equal snapshots mean nothing changed: not a byte, a mode, an owner, or an mtime.
    """
    root = Path(path)
    snap = {".": _entry(root)}
    for dirpath, dirnames, filenames in os.walk(root):  # does not descend into dir symlinks
        for name in dirnames + filenames:
            full = Path(dirpath, name)
            snap[str(full.relative_to(root))] = _entry(full)
    return snap
