"""Processes, paths and the `deploy` user: running commands, stopping processes, test folders."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
from collections.abc import Collection
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


# Deploy roots must sit where `deploy` can create directories and traverse every parent,
# which rules out pytest's tmp_path (/tmp/pytest-of-root is 0700).
TEST_ROOT = Path("/srv/atomic-deploy-tests")


DEPLOY_USER = "deploy"


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


def stop_process(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM `proc` if it still runs; SIGKILL it if it has not ended within `timeout`."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(first: int, skip: Collection[int] = ()) -> int:
    """The first port >= `first` that nobody listens on at 127.0.0.1 right now."""
    port = first
    while port in skip or not _port_free(port):
        port += 1
    return port


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


def kill_tree(pid: int) -> None:
    """SIGKILL a process and all its descendants (an sshd and the sessions it serves)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    todo, found = [pid], []
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children.get(p, [])
    for p in found:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
