"""Upload the source into deploy-cache/ with the local rsync, using the host's SSH settings.

pyinfra's own `files.rsync` always reports a change and passes paths unquoted through a shell;
here the argv is built as a list (no local shell) and every value inside `-e` is quoted.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from pyinfra import logger
from pyinfra.connectors.local import LocalConnector

from .common import progress_interval

# Compare mtimes to the nanosecond: by default rsync's quick check compares whole seconds, so
# a file rewritten with the same size within the second of the last upload was not sent, and
# the release held the old content. (A receiver before rsync 3.1.3 sends every file's delta.)
MTIME_NS = "--modify-window=-1"
CONTROL_PATH = "upload_control_path"  # host data: the socket of the run's master (ssh_master.py)


@dataclass(frozen=True)
class Transfer:
    """rsync's estimate of an upload."""

    files: int
    bytes: int

    def __str__(self) -> str:
        return f"{self.files:,} files, {_size(self.bytes)} to send"


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return str(n)


def ssh_option_path(path: str) -> str:
    """`path` as ssh reads an option value: one word (a space would start a second file),
    '%' doubled (ssh expands %-tokens in file names). '${' can't be escaped: ssh expands it.
    """
    escaped = path.replace("%", "%%").replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def ssh_command(data: Any) -> str:
    """The `-e` value: ssh with the same port, key and host key policy as pyinfra uses."""
    parts = ["ssh", "-o", "BatchMode=yes"]
    policy = data.get("ssh_strict_host_key_checking") or "accept-new"
    parts += ["-o", f"StrictHostKeyChecking={policy}"]
    if data.get("ssh_known_hosts_file"):
        known = ssh_option_path(str(data.get("ssh_known_hosts_file")))
        parts += ["-o", f"UserKnownHostsFile={known}"]
    if data.get("ssh_config_file"):
        parts += ["-F", str(data.get("ssh_config_file"))]
    if data.get("ssh_port"):
        parts += ["-p", str(int(data.get("ssh_port")))]
    if data.get("ssh_key"):
        parts += ["-i", str(data.get("ssh_key")).replace("%", "%%"), "-o", "IdentitiesOnly=yes"]
    if data.get("ssh_user"):
        parts += ["-l", str(data.get("ssh_user"))]
    if data.get(CONTROL_PATH):  # a session on the run's master connection, if it is up
        parts += ["-o", f"ControlPath={ssh_option_path(data.get(CONTROL_PATH))}"]
        parts += ["-o", "ControlMaster=no"]
    return shlex.join(parts)


def ssh_address(name: str, data: Any) -> str:
    """The address ssh connects to for the inventory host `name`."""
    return str(data.get("ssh_hostname") or name)


def rsync_argv(
    host: Any, source: str, dest: str, exclude: tuple[str, ...], dry_run: bool = False
) -> list[str]:
    """argv for `rsync source/ -> host:dest/`: --delete, no .git, excluded paths removed too."""
    argv = ["rsync", "-a", MTIME_NS, "--delete", "--delete-excluded", "--exclude=.git"]
    argv += [f"--exclude={pattern}" for pattern in exclude]
    if dry_run:
        argv += ["--dry-run", "--stats"]
    src = source.rstrip("/") + "/"
    if isinstance(host.connector, LocalConnector):
        return [*argv, "--", src, dest.rstrip("/") + "/"]
    address = ssh_address(host.name, host.data)
    if ":" in address:  # IPv6 literal
        address = f"[{address}]"
    # -s: the remote path goes to the remote rsync as data, not through the remote shell.
    return [*argv, "-s", "-e", ssh_command(host.data), "--", src, f"{address}:{dest}/"]


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - argv list, no shell
        argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False
    )


def estimate(host: Any, source: str, dest: str | None, exclude: tuple[str, ...]) -> Transfer | None:
    """Files and bytes an upload would send; `dest` None = nothing there yet (send all).

    Changes nothing anywhere (rsync --dry-run, or a local listing). None if rsync failed.
    """
    if dest is None:
        argv = ["rsync", "-a", "--dry-run", "--stats", "--exclude=.git"]
        argv += [f"--exclude={p}" for p in exclude]
        # A local --dry-run into a path that does not exist creates nothing.
        argv += ["--", source.rstrip("/") + "/", "/nonexistent/atomic-deploy-estimate/"]
    else:
        argv = rsync_argv(host, source, dest, exclude, dry_run=True)
    result = _run(argv)
    if result.returncode != 0:
        return None
    files = re.search(r"Number of regular files transferred: ([\d,]+)", result.stdout)
    size = re.search(r"Total transferred file size: ([\d,]+)", result.stdout)
    if not files or not size:
        return None
    return Transfer(int(files.group(1).replace(",", "")), int(size.group(1).replace(",", "")))


@dataclass(frozen=True)
class Progress:
    """One `--info=progress2` record: bytes sent so far, percent, files sent, files to check."""

    bytes: int
    percent: int
    files: int | None = None
    left: int | None = None  # files still to check
    total: int | None = None  # files known so far (grows while rsync still scans)

    def __str__(self) -> str:
        text = f"upload: {_size(self.bytes)} sent ({self.percent}%)"
        if self.files is not None and self.total is not None and self.left is not None:
            text += f", {self.files:,} files, {self.total - self.left:,}/{self.total:,} checked"
        return text


_PROGRESS = re.compile(
    r"([\d,]+)\s+(\d+)%\s+\S+\s+\S+(?:\s+\(xfr#([\d,]+), \w+-chk=([\d,]+)/([\d,]+)\))?"
)


def parse_progress(text: str) -> Progress | None:
    """The last complete progress record in rsync `--info=progress2` output, or None.

    rsync rewrites its progress line with carriage returns:
    `  1,234,567  45%   12.34MB/s    0:00:01 (xfr#12, to-chk=34/567)`.
    """
    for line in reversed(re.split(r"[\r\n]", text)):
        found = _PROGRESS.search(line)
        if found:
            n, pct, files, left, total = found.groups()
            return Progress(
                int(n.replace(",", "")), int(pct),
                *(int(x.replace(",", "")) if x else None for x in (files, left, total)),
            )  # fmt: skip
    return None


def upload(state: Any, host: Any, source: str, dest: str, exclude: tuple[str, ...]) -> bool:
    """Run the upload (pyinfra FunctionCommand callback): True on success.

    rsync's own progress (`--info=progress2`, parsed locally: no extra remote command) is
    shown per host at most once per `progress_interval()`.
    """
    argv = rsync_argv(host, source, dest, exclude)
    argv.insert(1, "--info=progress2")
    interval, last, pending = progress_interval(), time.monotonic(), ""
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(  # noqa: S603 - argv list, no shell
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors
        )
        assert proc.stdout is not None
        while chunk := proc.stdout.read1(65536):
            pending = (pending + chunk.decode(errors="replace"))[-4096:]
            if time.monotonic() - last >= interval:
                progress = parse_progress(pending)
                if progress is not None:
                    host.log(str(progress))
                last = time.monotonic()
        returncode = proc.wait()
        errors.seek(0)
        stderr = errors.read().decode(errors="replace")
    if returncode != 0:
        host.log_styled(
            f"rsync to {dest} failed (exit {returncode}): {stderr.strip()}",
            fg="red",
            log_func=logger.error,
        )
        return False
    return True
