"""The database a host dumps before the switch, and the pure decisions about its dumps.

Kept apart from the operation (`dump.py`) so that they can be unit-tested without a host:
reading `max_age`, judging freshness, choosing what to prune, and the option file that carries
the password. The password itself is never host data (pyinfra shows host data in
`debug-inventory` and in debug logs): the inventory loader reads it from the controller's
environment into `_PASSWORDS`, keyed by host name, and the operation takes it from there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from .layout import HostDataValue
from .release_name import RELEASE_NAME

CNF_NAME = "mysqldump.cnf"  # .atomic-deploy/mysqldump.cnf while a dump runs (mode 0600)
DUMP_TMP_PREFIX = ".tmp-"  # backups/.tmp-<final name>: a dump being written

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MAX_AGE_RE = re.compile(r"^([0-9]{1,7})(s|m|h|d)$")
_STAMP = r"[0-9]{8}T[0-9]{6}Z"

# Set by the inventory loader (config.py), read by the dump operation: host name -> password.
_PASSWORDS: dict[str, str] = {}


def remember_password(host_name: str, password: str) -> None:
    """Keep `host_name`'s database password for this run (never in host data)."""
    _PASSWORDS[host_name] = password


def password_for(host_name: str) -> str | None:
    return _PASSWORDS.get(host_name)


def parse_max_age(text: str) -> int:
    """'90s', '30m', '1h', '2d' -> seconds. Raises ValueError for anything else."""
    match = _MAX_AGE_RE.match(str(text).strip())
    if not match:
        raise ValueError(f"{text!r} is not a duration like 30m, 1h or 2d")
    return int(match.group(1)) * _UNITS[match.group(2)]


def format_age(seconds: float) -> str:
    """A dump's age in words a human reads at a glance: '45 s', '12 min', '26 h', '3 d'."""
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 120 * 60:
        return f"{seconds // 60} min"
    if seconds < 48 * 3600:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def format_window(seconds: int) -> str:
    """max_age as written back to the user: 3600 -> '1 h', 5400 -> '90 min'."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


@dataclass(frozen=True)
class Database(HostDataValue):
    """One host's `database` settings, its own keys over the client's (host data 'database',
    see config.host_data); defaults come from the schema; never a password.
    """

    name: str
    dir: str
    # seconds; None (the default): a dump made by this run before every switch. Set: the
    # older rule, a dump younger than this counts (reruns included).
    max_age: int | None
    keep: int
    user: str | None = None
    host: str | None = None
    port: int | None = None
    socket: str | None = None
    password_env: str | None = None
    defaults_file: str | None = None
    download_dir: str | None = None  # absolute folder on the machine running pyinfra
    download_keep: int | None = None  # local copies per host and database

    def dump_re(self) -> re.Pattern[str]:
        """Names of this database's complete dumps: <name>-<UTC stamp>[-<sha>].sql.gz."""
        return re.compile(rf"^{re.escape(self.name)}-{_STAMP}(-{RELEASE_NAME})?\.sql\.gz$")

    def leftover_re(self) -> re.Pattern[str]:
        """Temp files of interrupted dumps of this database (and their stderr captures)."""
        return re.compile(
            rf"^{re.escape(DUMP_TMP_PREFIX)}{re.escape(self.name)}-{_STAMP}"
            rf"(-{RELEASE_NAME})?\.sql\.gz(\.err|\.tail)?$"
        )


def _option_value(value: str) -> str:
    """A value for a MySQL/MariaDB option file: double-quoted, with \\ and \" escaped."""
    if "\0" in value:
        raise ValueError("contains a NUL byte")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


def option_file(database: Database, password: str) -> str:
    """The [client] option file uploaded for a dump: connection settings and the password."""
    lines = ["# written by atomic-deploy for one dump; removed when it ends", "[client]"]
    for key, value in (
        ("user", database.user),
        ("password", password),
        ("host", database.host),
        ("port", database.port),
        ("socket", database.socket),
    ):
        if value is not None:
            lines.append(f"{key}={_option_value(str(value))}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class DumpFile:
    name: str
    mtime: int
    size: int
    recorded: int | None = None  # its size when it was verified (None: no record)

    @property
    def intact(self) -> bool:
        """Still the size it had when verified: not cut short or replaced since."""
        return self.recorded == self.size


@dataclass
class DumpFolder:
    """What the dump fact found on the host (see dump.DumpFacts)."""

    root: str = ""
    now: int = 0
    folder: str = "missing"  # ok, missing, notdir
    mode: str = ""  # octal permission bits of the folder, e.g. "700"
    dumps: list[DumpFile] = field(default_factory=list)  # complete dumps, any order
    leftovers: list[str] = field(default_factory=list)  # temp files of interrupted dumps
    stale_cnf: bool = False  # an option file left by an interrupted run
    tools: set[str] = field(default_factory=set)  # mysqldump, mysql, gzip found on the host
    defaults_file: str = "none"  # none, ok, missing (the configured defaults_file)


def parse_dump_folder(lines: list[str], database: Database) -> DumpFolder:
    """Turn the fact script's lines into a DumpFolder, keeping only names this tool makes."""
    out = DumpFolder()
    recorded: dict[str, int] = {}
    dump_re, leftover_re = database.dump_re(), database.leftover_re()
    for line in lines:
        tag, _, rest = line.partition(" ")
        if tag == "root":
            out.root = rest
        elif tag == "now" and rest.isdigit():
            out.now = int(rest)
        elif tag == "tool":
            out.tools.add(rest)
        elif tag == "defaults":
            out.defaults_file = rest
        elif tag == "folder":
            state, _, mode = rest.partition(" ")
            out.folder, out.mode = state, mode
        elif tag == "cnf":
            out.stale_cnf = True
        elif tag == "file":
            parts = rest.split(" ", 2)
            if len(parts) != 3 or not (parts[0].isdigit() and parts[1].isdigit()):
                continue
            mtime, size, name = int(parts[0]), int(parts[1]), parts[2]
            if dump_re.match(name) and size > 0:
                out.dumps.append(DumpFile(name, mtime, size))
            elif leftover_re.match(name):
                out.leftovers.append(name)
        elif tag == "recorded":
            size, _, name = rest.partition(" ")
            if size.isdigit():
                recorded[name] = int(size)
    out.dumps = [replace(d, recorded=recorded.get(d.name)) for d in out.dumps]
    return out


@dataclass(frozen=True)
class Switch:
    """What this run does to the host's `current`, as read before the switch."""

    host: str
    live: str | None  # the release `current` points at now; None: none yet
    release: str  # the release this run deploys

    @property
    def switches(self) -> bool:
        return self.live != self.release


@dataclass
class DumpPlan:
    """What `fresh_dump_present` does: a new dump or not, and what to remove."""

    new_dump: bool
    message: str
    prune: list[str] = field(default_factory=list)  # complete dumps beyond `keep`
    leftovers: list[str] = field(default_factory=list)


def plan_dump(folder: DumpFolder, database: Database, switch: Switch | None = None) -> DumpPlan:
    """Decide from the folder's state and the coming switch: a new dump or not, what goes.

    Without max_age (the default), a run that switches the host to another release dumps
    before it, whatever dumps exist; a run that switches nothing dumps nothing. With max_age,
    the newest complete dump counts when it is younger than max_age by the host's clock
    (mtime vs the host's `date`), switch or not. Dumps beyond `keep` are pruned oldest first,
    counting the new one when one is made; the newest complete dump is never pruned.
    """
    if database.keep < 1:
        raise ValueError("keep must be at least 1")
    if database.max_age is None and switch is None:
        raise ValueError("without max_age, the dump depends on the switch: pass it")
    dumps = sorted(folder.dumps, key=lambda d: (d.mtime, d.name), reverse=True)
    complete = [d for d in dumps if d.intact]
    label = f"dump {database.name}"
    damaged = [
        d.name for d in dumps if not d.intact and (not complete or d.mtime >= complete[0].mtime)
    ]
    note = (
        f" ({', '.join(damaged)}: damaged or cut short since it was made, not counted)"
        if damaged
        else ""
    )
    if database.max_age is None:
        target = f"releases/{switch.release}"
        new = switch.switches
        if new:
            message = f"{label}: before switching {switch.host} to {target}{note} -> new dump"
        else:
            message = f"{label}: {target} is already live on {switch.host}: no dump{note}"
    elif not dumps:
        new, message = True, f"{label}: no dump yet -> new dump"
    elif not complete:
        new, message = True, f"{label}: no complete dump yet{note} -> new dump"
    else:
        age = folder.now - complete[0].mtime
        if age < database.max_age:
            new, message = False, f"{label}: fresh ({format_age(age)} old){note}"
        else:
            new = True
            window = format_window(database.max_age)
            message = (
                f"{label}: newest is {format_age(age)} old (fresh is < {window}){note} -> new dump"
            )
    # Only complete dumps count toward `keep`. A damaged one goes once a complete dump newer
    # than it exists (with a new dump: once that is verified, as the script prunes after it).
    room = database.keep - 1 if new else database.keep
    newest = None if new else (complete[0].mtime if complete else None)
    prune = [d.name for d in complete[room:]]
    prune += [d.name for d in dumps if not d.intact and (new or (newest and d.mtime < newest))]
    return DumpPlan(
        new_dump=new,
        message=message,
        prune=sorted(prune),
        leftovers=sorted(folder.leftovers),
    )
