"""What a release holds: a listing written when it is populated, compared on every run.

The listing has one line per path of the release (type, size, mtime in ns, link target),
sorted, leaving out the shared paths (they are links into shared/, checked by shared_linked),
the writable dirs (the site writes there: states/writable.py) and the tool's own files.
It reads no file contents: for a 10,000-file release it costs
tens of milliseconds, so every run can check that nobody edited, added or deleted files in
the release (a "hot-fix" on the server) and that none went missing. An edit that keeps the
size and resets the mtime would go unnoticed; that takes intent, not a slip.

Where a core is free, writing it adds no wall time to a build in copy_mode copy and hardlink:
`copy_listed` lists deploy-cache/ while `cp -a`/`cp -al` copies it (both keep what the
listing shows); for a 30,000-file site that hides ~0.1 s (the stat of every file, the sort).
Where that could differ from the finished release (see sh/copy_listed.sh) and in copy_mode
reflink, `list_release` lists the release once it is complete.
"""

from __future__ import annotations

import posixpath

from pyinfra.api import QuoteString, StringCommand

from .common import chain, progress_interval
from .copy_mode import copy_command
from .layout import MANIFEST, MARKER
from .shell import script


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


def copy_listed(mode: str, src: str, dest: str, unlisted: list[str]) -> StringCommand:
    """Command making folder `dest` (absent) a copy of folder `src` (copy_command), with its
    manifest already written where listing `src` while copying gives the release's listing.

    `unlisted`: the shared paths and writable dirs, which the steps after the copy replace
    (release.py). Either way `dest` holds no manifest from `src` afterwards.
    """
    if mode not in ("copy", "hardlink"):  # reflink: its fallback copies again; list after
        dropped = StringCommand("rm", "-f", QuoteString(posixpath.join(dest, MANIFEST)))
        return chain(copy_command(mode, src, dest), dropped)
    parents = sorted({p for path in unlisted for p in _parents(path)})
    variables = {
        "src": src,
        "dest": dest,
        "flags": "-al" if mode == "hardlink" else "-a",
        "manifest": MANIFEST,
        "listing": listing_command(unlisted).get_raw_value(),
        "every": str(progress_interval()),  # seconds between the copy's progress lines
    }
    return script("copy_listed.sh", variables, parents)


def list_release(build: str, unlisted: list[str]) -> StringCommand:
    """Command writing the manifest of the release being built at `build`, unless
    `copy_listed` already did."""
    manifest = QuoteString(posixpath.join(build, MANIFEST))
    return StringCommand(
        "[", "-e", manifest, "]", "||",
        "(", "cd", QuoteString(build), "&&", listing_command(unlisted), ")", ">", manifest,
    )  # fmt: skip


def _parents(path: str) -> list[str]:
    """'a/b/c' -> ['a', 'a/b']: the folders the steps after the copy make (`mkdir -p`)."""
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


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
