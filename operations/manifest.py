"""What a release holds: a listing written when it is populated, compared on every run.

The listing has one line per path of the release (type, size, mtime in ns, link target),
sorted, leaving out the shared paths (they are links into shared/, checked by shared_linked),
the writable dirs (the site writes there: states/writable.py) and the tool's own files.
It reads no file contents: for a 10,000-file release it costs
tens of milliseconds, so every run can check that nobody edited, added or deleted files in
the release (a "hot-fix" on the server) and that none went missing. An edit that keeps the
size and resets the mtime would go unnoticed; that takes intent, not a slip.
"""

from __future__ import annotations

from pyinfra.api import QuoteString, StringCommand

from .layout import MANIFEST, MARKER


def listing_command(shared_paths: list[str]) -> StringCommand:
    """Shell command printing the listing of the release in the working directory, without
    `shared_paths` (the shared paths and the writable dirs) and what is inside them."""
    prunes: list[object] = []
    for path in [MARKER, MANIFEST, *shared_paths]:
        prunes += ["-o" if prunes else "", "-path", QuoteString(f"./{path}")]
    return StringCommand(
        "find", ".", "\\(", *[p for p in prunes if p], "\\)", "-prune",
        "-o", "-type", "d", "-printf", "'d %P\\n'",
        "-o", "-type", "l", "-printf", "'l %l -> %P\\n'",
        "-o", "-printf", "'%y %s %T@ %P\\n'",
        "|", "LC_ALL=C", "sort",
    )  # fmt: skip


def parse_differences(lines: list[str]) -> list[str]:
    """diff(1) lines of manifest vs. now ('< old', '> new') -> 'edited/added/deleted: path'."""
    old: dict[str, str] = {}
    new: dict[str, str] = {}
    for line in lines:
        side, _, entry = line.partition(" ")
        path = entry.split(" -> ", 1)[1] if entry.startswith("l ") else _path(entry)
        (old if side == "<" else new)[path] = entry
    out = []
    for path in sorted(old.keys() | new.keys()):
        if path in old and path in new:
            out.append(f"edited: {path}")
        elif path in new:
            out.append(f"added: {path}")
        else:
            out.append(f"deleted: {path}")
    return out


def _path(entry: str) -> str:
    kind, _, rest = entry.partition(" ")
    if kind == "d":
        return rest
    return rest.split(" ", 2)[2] if rest.count(" ") >= 2 else rest
