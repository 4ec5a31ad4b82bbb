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
from dataclasses import asdict, dataclass
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


class HostDataValue:
    """A settings class pyinfra keeps in host data (built by config.host_data).

    `pyinfra INVENTORY debug-inventory` prints host data as JSON through `to_json`.
    """

    def to_json(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True)
class Layout(HostDataValue):
    """Where things live on one host; `root` None means the SSH user's home."""

    root: str | None
    docroot: str
    shared_dirs: tuple[str, ...]
    shared_files: tuple[str, ...]
    writable_dirs: tuple[str, ...] = ()  # in each release, not shared (states/writable.py)

    @property
    def shared_paths(self) -> list[tuple[str, str]]:
        """(kind, path) for every shared path, kind "d" or "f", in the fact's index order."""
        return [("d", p) for p in self.shared_dirs] + [("f", p) for p in self.shared_files]


@dataclass(frozen=True)
class Deploy(HostDataValue):
    """Everything deploy.py needs for one host: host data 'deploy' (see config.host_data).

    No defaults here: the schema's are filled into the client file's values (config.py).
    """

    layout: Layout
    release: str  # NO_RELEASE for a run about no particular release (see live.deploy_for)
    source: str  # the folder uploaded: the staged upload set (see upload.py)
    exclude: tuple[str, ...]
    keep_releases: int
    deployed_by: str
    copy_mode: str  # copy | hardlink | reflink (how releases are made from the cache)
    # (shared file, absolute local path): files uploaded to shared/ (see shared_sources.py)
    shared_sources: tuple[tuple[str, str], ...]
    shared_mode: str | None = None  # e.g. "2775"; None: leave as created
    shared_group: str | None = None
    writable_mode: str | None = None  # e.g. "2775"; None: as created (states/writable.py)
    writable_group: str | None = None
    digest: str | None = None  # of the upload set; written into the release (see upload.py)

    def __post_init__(self) -> None:
        # Both reach shell commands; `release` may come from --data (see live.deploy_for).
        check_release_value(self.release, "host data 'release'")
        if self.digest is not None and not re.fullmatch(r"[0-9a-f]{64}", str(self.digest)):
            raise ValueError(f"upload digest {self.digest!r} is not a sha256 digest")


def release_path(root: str, sha: str) -> str:
    return posixpath.join(root, RELEASES_DIR, sha)
