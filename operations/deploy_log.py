"""The deploy log, `<root>/.atomic-deploy/log`: its events, its line format, its parser.

One line per event, appended, never rewritten; tab-separated:

    <UTC time>\t<event>\t<release>\t<who>\t<detail>

e.g. ``2026-01-02T03:04:05Z\tswitch\t0123456789ab\tann@laptop\tfrom 89abcdef0123``. Hosts
keep their logs across versions of this tool, so the format stays as it is. It orders
releases (pruning, the rollback target), finds the dump taken before a release and shows a
host's history.
"""

from __future__ import annotations

import posixpath
import time
from collections.abc import Iterable
from dataclasses import dataclass

from pyinfra.api import QuoteString, StringCommand

from .layout import LOG_FILE
from .release_name import RELEASE_RE

# Event names (the second field); detail is what the event says in the fifth.
POPULATED = "populated"  # releases/<release> was built (or rebuilt clean)
# releases/<release> was moved aside; detail: its new name in releases/, then why in
# parentheses (see `aside_detail`; older lines have the name only)
ASIDE = "aside"
SWITCH = "switch"  # current -> <release>; detail: "from <release before>" ("from -": none)
# current -> <release> by a rollback; detail: "from <release left>" (left for good: no longer a
# rollback target), "from <release left> (health check)", or "named; left <release left>"
ROLLBACK = "rollback"
PRUNE = "prune"  # releases/<release> was deleted
DUMP = "dump"  # a database dump was written before deploying <release>; detail: its file
RESTORE = "restore"  # a dump was loaded; detail: its file
HEALTH_FAILED = "health-failed"  # after the switch to <release>; detail: what failed
HOOK_FAILED = "hook-failed"  # detail: "<point>: <hook command>"
PHP_REFRESH = "php-refresh"  # PHP forgot older releases; detail: the mode

# Events that point `current` at their release.
MADE_LIVE = (SWITCH, ROLLBACK)

# Why a folder at releases/<release> was moved aside (the ASIDE event's detail says which).
EDITED = "edited"  # files of a complete release were changed on the server
INCOMPLETE = "incomplete"  # its completion marker or file list was missing
REPLACED = "another upload"  # the same name now holds another upload set (new exclude, ...)
FOREIGN = "not made by atomic-deploy"  # no marker, never populated: a person or tool made it

_STAMP = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class Event:
    """One line of the deploy log."""

    when: str  # UTC, as written: 2026-01-02T03:04:05Z
    event: str
    release: str
    by: str = ""
    detail: str = ""


def line(event: str, release: str, by: str, detail: str = "", when: float | None = None) -> str:
    """One deploy log line (no newline); `when` is a Unix time, None: now.

    Tabs in `by` and `detail` become spaces: they would shift the fields.
    """
    stamp = time.strftime(_STAMP, time.gmtime(when))
    return "\t".join((stamp, event, release, by.replace("\t", " "), detail.replace("\t", " ")))


def parse(lines: Iterable[str]) -> list[Event]:
    """The events of `lines` (the log, oldest first), in order.

    Lines without a valid release name in the third field are skipped: a log edited by hand,
    or cut by a full disk, still orders the releases it does name. Missing who/detail fields
    read as empty; fields past the fifth are ignored.
    """
    events = []
    for text in lines:
        parts = text.split("\t")
        if len(parts) >= 3 and RELEASE_RE.match(parts[2]):
            parts += [""] * (5 - len(parts))
            events.append(Event(*parts[:5]))
    return events


def aside_detail(name: str, why: str) -> str:
    """The ASIDE event's detail: the copy's name in releases/ and why it was moved aside."""
    return f"{name} ({why})"


def aside_of(detail: str) -> tuple[str, str]:
    """(name, why) from an ASIDE event's detail; why is "" on lines that predate it."""
    name, _, why = detail.partition(" ")
    return name, why.removeprefix("(").removesuffix(")")


def append_command(root: str, text: str) -> StringCommand:
    """The host command that appends line `text` to the deploy log under `root`."""
    return StringCommand(
        "printf", "'%s\\n'", QuoteString(text), ">>", QuoteString(posixpath.join(root, LOG_FILE))
    )
