"""Names and paths of the layout under a deploy root, and the host data that describes it.

<root>/deploy-cache/              rsync target: the upload lands here first
<root>/releases/<sha>/            one complete copy per release
<root>/shared/<path>              survives releases, linked into each release
<root>/current -> releases/<sha>  switched by rename(2)
<root>/<docroot> -> current/<docroot>
<root>/.atomic-deploy/log         append-only deploy log (orders releases)
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Any

from .release_name import check_release_value

NO_RELEASE = "0000000"  # placeholder release name when a run targets no particular release

META_DIR = ".atomic-deploy"
LOG_FILE = f"{META_DIR}/log"
MARKER = ".atomic-deploy-release"  # written last into a release: "this copy is complete"
MANIFEST = ".atomic-deploy-manifest"  # what the release held when complete (see manifest.py)
CACHE_DIR = "deploy-cache"
RELEASES_DIR = "releases"
CURRENT_LINK = "current"  # -> releases/<sha>: the live release
SHARED_DIR = "shared"
PRESERVED_DIR = "shared-preserved"  # content found where a link into shared/ belongs
TMP_PREFIX = ".tmp-"  # releases/.tmp-<sha>-<run>: a release being built
ASIDE_PREFIX = ".aside-"  # releases/.aside-<sha>-<run>: an edited/incomplete copy, kept a while


@dataclass(frozen=True)
class Layout:
    """Where things live on one host; `root` None means the SSH user's home."""

    root: str | None
    docroot: str = "htdocs"
    shared_dirs: tuple[str, ...] = ("cache", "content", "storage")
    shared_files: tuple[str, ...] = ()

    @property
    def shared_paths(self) -> list[tuple[str, str]]:
        """(kind, path) for every shared path, kind "d" or "f", in the fact's index order."""
        return [("d", p) for p in self.shared_dirs] + [("f", p) for p in self.shared_files]


@dataclass(frozen=True)
class Deploy:
    """Everything deploy.py needs for one host, read from its host data."""

    layout: Layout
    release: str
    source: str  # the folder uploaded: the staged upload set (see upload.py)
    exclude: tuple[str, ...]
    keep_releases: int
    deployed_by: str
    shared_mode: str | None = None  # e.g. "2775"; None: leave as created
    shared_group: str | None = None
    copy_mode: str = "copy"  # copy | hardlink | reflink (how releases are made from the cache)
    digest: str | None = None  # of the upload set; written into the release (see upload.py)
    # (shared file, absolute local path): files uploaded to shared/ (see shared_sources.py)
    shared_sources: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_host_data(cls, data: Any) -> Deploy:
        """Build from pyinfra host data (see config.host_data); re-checks `--data release`."""
        return cls(
            layout=Layout(
                root=data.get("root"),
                docroot=data.get("docroot", "htdocs"),
                shared_dirs=tuple(data.get("shared_dirs", ("cache", "content", "storage"))),
                shared_files=tuple(data.get("shared_files", ())),
            ),
            release=check_release_value(data.get("release"), "host data 'release'"),
            source=data.get("upload_dir") or data.get("source"),
            exclude=tuple(data.get("exclude", ())),
            keep_releases=int(data.get("keep_releases", 5)),
            deployed_by=data.get("deployed_by", "unknown"),
            shared_mode=data.get("shared_mode"),
            shared_group=data.get("shared_group"),
            copy_mode=data.get("copy_mode") or "copy",
            digest=_checked_digest(data.get("upload_digest")),
            shared_sources=tuple(sorted((data.get("shared_sources") or {}).items())),
        )


def _checked_digest(value: Any) -> str | None:
    """The upload set's digest from host data: 64 hex digits (it reaches a shell) or None."""
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-f]{64}", value):
        raise ValueError(f"host data 'upload_digest': {value!r} is not a sha256 digest")
    return value


def release_path(root: str, sha: str) -> str:
    return posixpath.join(root, RELEASES_DIR, sha)
