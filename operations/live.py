"""Settings for running a live site: which deploy files name no new release, hooks, health, notify.

`rollback.py`, `status.py` and `restore_dump.py` do not upload the source, so the inventory
does not name a release after the source's HEAD for them (see config.inventory_hosts): for
them `--data 'release="<sha>"'` only has to be a well-formed sha, which must exist on the hosts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

from .layout import NO_RELEASE, Deploy, HostDataValue

# Deploy files that work on releases already on the hosts.
NO_UPLOAD_FILES = ("rollback.py", "status.py", "restore_dump.py")
HOOK_POINTS = ("before_switch", "after_switch", "on_failure", "after_rollback")


def uploads_source(argv: list[str]) -> bool:
    """False when the pyinfra command line runs one of NO_UPLOAD_FILES (it can't upload)."""
    return not any(os.path.basename(arg) in NO_UPLOAD_FILES for arg in argv[1:])


def deploy_for(deploy: Deploy, release: Any) -> Deploy:
    """The host's Deploy settings for a run about an existing release (or none: NO_RELEASE).

    `release` is host data 'release' (`--data release`, checked again by Deploy).
    """
    return replace(deploy, release=NO_RELEASE if release is None else release)


@dataclass(frozen=True)
class Hooks(HostDataValue):
    """The client's `hooks` section: shell commands per point (run with sh -c, as written)."""

    before_switch: tuple[str, ...]
    after_switch: tuple[str, ...]
    on_failure: tuple[str, ...]
    after_rollback: tuple[str, ...]  # rollback.py: on each host whose current moved back
    php_binary: str  # the host's PHP CLI: $ATOMIC_PHP in every hook's environment
    maintenance: bool  # shared/.maintenance exists while before_switch hooks run


@dataclass(frozen=True)
class Health(HostDataValue):
    """The client's `health` section: an HTTP check of each host after the switch."""

    url: str  # may hold {host}: the host's name in the inventory
    status: int
    timeout: float
    retries: int
    delay: float
    contains: str | None = None

    def url_for(self, host_name: str) -> str:
        return self.url.replace("{host}", host_name)
