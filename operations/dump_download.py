"""Copies of the dumps on the machine running pyinfra (`database.download`), off the server.

A copy is named `<host>--<dump file name>`, e.g. `web1--craft-20261130T141903Z-0123abcdef01.sql.gz`,
in the configured folder (mode 0700), mode 0600. It is written under `.tmp-<copy name>`, checked
(the size the dump had when the host verified it, the gzip stream, mysqldump's `-- Dump
completed` trailer) and only then renamed: a copy with the final name is always complete.
Retention keeps the newest `download.keep` copies per host and database; other files in the
folder are never touched. The pure parts (names, what to remove, the check) are unit-tested.
"""

from __future__ import annotations

import gzip
import os
import posixpath
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from paramiko import SSHException
from pyinfra import logger
from pyinfra.api import QuoteString, State, StringCommand
from pyinfra.api.host import Host

from .database import Database

SEPARATOR = "--"  # between the host's name and the dump's file name
TMP_PREFIX = ".tmp-"  # a copy being downloaded
_CHUNK = 1 << 20


def copy_name(host_name: str, dump_name: str) -> str:
    """The local copy's file name: the host, then the dump's own name (db, UTC time, release)."""
    return f"{host_name}{SEPARATOR}{dump_name}"


def _dump_of(name: str, host_name: str, database: Database) -> str | None:
    """The dump name inside copy name `name` of this host and database, else None."""
    prefix = f"{host_name}{SEPARATOR}"
    if not name.startswith(prefix):
        return None
    dump = name[len(prefix) :]
    return dump if database.dump_re().match(dump) else None


def _stamp_key(dump_name: str, database: Database) -> tuple[str, str]:
    """Sort key: the UTC stamp in the name (it follows '<db>-'), then the name."""
    return dump_name[len(database.name) + 1 :][:16], dump_name


@dataclass
class LocalCopies:
    """This host's and database's files in the local folder."""

    copies: list[str] = field(default_factory=list)  # complete copies, oldest first
    leftovers: list[str] = field(default_factory=list)  # temp files of interrupted downloads


def local_copies(names: Iterable[str], host_name: str, database: Database) -> LocalCopies:
    """Sort the folder's file names: this host's and database's copies and leftovers only."""
    out = LocalCopies()
    found = []
    for name in names:
        if name.startswith(TMP_PREFIX) and _dump_of(name[len(TMP_PREFIX) :], host_name, database):
            out.leftovers.append(name)
        elif (dump := _dump_of(name, host_name, database)) is not None:
            found.append((_stamp_key(dump, database), name))
    out.copies = [name for _, name in sorted(found)]
    out.leftovers.sort()
    return out


def to_prune(
    copies: LocalCopies, incoming: str | None, host_name: str, database: Database
) -> list[str]:
    """Copies beyond `database.download_keep` once `incoming` (a copy name, or None) is in
    place, oldest first by the time in their names. `incoming` itself is never among them."""
    keep = database.download_keep
    if keep < 1:
        raise ValueError("keep must be at least 1")
    names = set(copies.copies) | ({incoming} if incoming else set())
    ordered = sorted(names, key=lambda n: _stamp_key(_dump_of(n, host_name, database), database))
    return [n for n in ordered[: max(0, len(ordered) - keep)] if n != incoming]


def list_folder(folder: str) -> list[str]:
    """File names in the local folder (none when it does not exist yet)."""
    try:
        return sorted(os.listdir(folder))
    except FileNotFoundError:
        return []


def check_copy(path: str, expected_size: int) -> str | None:
    """Why the downloaded file at `path` is not a complete dump, or None when it is.

    Complete: the size the host recorded when it verified the dump, a gzip stream that ends
    properly (CRC and length checked), and mysqldump's `-- Dump completed` trailer at the end.
    """
    size = os.path.getsize(path)
    if size != expected_size:
        return f"{size} bytes arrived, the dump has {expected_size}"
    tail = b""
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(_CHUNK):
                tail = (tail + chunk)[-4096:]
    except (OSError, EOFError, zlib.error) as e:
        return f"the gzip stream is damaged or cut short ({e})"
    last = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    if not last.startswith(b"-- Dump completed"):
        return "it lacks mysqldump's '-- Dump completed' trailer"
    return None


@dataclass(frozen=True)
class Download:
    """One download: the dump on the host, and where its copy goes."""

    remote: str  # absolute path of the dump on the host
    folder: str  # absolute local folder
    name: str  # the copy's file name
    prune: tuple[str, ...] = ()  # older copies to remove once the copy is in place
    leftovers: tuple[str, ...] = ()  # temp files of interrupted downloads to remove first


def download(state: State, host: Host, job: Download, label: str) -> bool:
    """Run at execute time (a FunctionCommand): fetch, check, rename, prune. False: failed,
    and no file with the copy's name was written (the temp file is removed)."""
    tmp = os.path.join(job.folder, TMP_PREFIX + job.name)
    final = os.path.join(job.folder, job.name)
    try:
        os.makedirs(job.folder, mode=0o700, exist_ok=True)
        os.chmod(job.folder, 0o700)
        for name in job.leftovers:
            _remove(os.path.join(job.folder, name))
        expected = _recorded_size(state, host, job.remote)
        _remove(tmp)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.fchmod(fd, 0o600)  # exactly, whatever the umask
        with os.fdopen(fd, "wb") as out:
            if not host.get_file(job.remote, out):
                raise OSError(f"downloading {job.remote} failed")
            out.flush()
            os.fsync(out.fileno())
        problem = check_copy(tmp, expected)
        if problem:
            raise OSError(f"the copy of {job.remote} is not complete: {problem}; not kept")
        os.replace(tmp, final)
    except (OSError, ValueError, SSHException) as e:
        _remove(tmp)
        host.log_styled(f"{label}: download: {e}", fg="red", log_func=logger.error)
        return False
    for name in job.prune:
        _remove(os.path.join(job.folder, name))
    host.log(f"{label}: downloaded to {final} ({expected} bytes)", log_func=logger.info)
    return True


def _recorded_size(state: State, host: Host, remote: str) -> int:
    """The size the host recorded when it verified the dump (<dir>/.<name>.size)."""
    folder, name = posixpath.split(remote)
    record = posixpath.join(folder, f".{name}.size")
    ok, output = host.run_shell_command(
        StringCommand("cat", "--", QuoteString(record)),
        print_output=state.print_output,
        print_input=state.print_input,
    )
    text = "".join(output.stdout_lines).strip()
    if not ok or not text.isdigit():
        raise ValueError(f"{remote} has no recorded size: not a dump verified by atomic-deploy")
    return int(text)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
