"""Snapshots of a folder tree: equal snapshots mean nothing changed."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import NamedTuple


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
