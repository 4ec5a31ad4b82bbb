"""Settings for running a live site: which deploy files name no new release, hooks, health, notify.

`rollback.py`, `status.py` and `restore_dump.py` do not upload the source, so the inventory
does not name a release after the source's HEAD for them (see config.inventory_hosts): for
them `--data 'release="<sha>"'` only has to be a well-formed sha, which must exist on the hosts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .layout import NO_RELEASE, Deploy

# Deploy files that work on releases already on the hosts.
NO_UPLOAD_FILES = ("rollback.py", "status.py", "restore_dump.py")
HOOK_POINTS = ("before_switch", "after_switch", "on_failure", "after_rollback")


def uploads_source(argv: list[str]) -> bool:
    """False when the pyinfra command line runs one of NO_UPLOAD_FILES (it can't upload)."""
    return not any(os.path.basename(arg) in NO_UPLOAD_FILES for arg in argv[1:])


class _WithRelease:
    """Host data, with `release` replaced."""

    def __init__(self, data: Any, release: str):
        self._data, self._release = data, release

    def get(self, key: str, default: Any = None) -> Any:
        return self._release if key == "release" else self._data.get(key, default)


def deploy_for(data: Any, release: str | None) -> Deploy:
    """The host's Deploy settings for a run about an existing release (or none: NO_RELEASE)."""
    return Deploy.from_host_data(_WithRelease(data, release or NO_RELEASE))


@dataclass(frozen=True)
class Hooks:
    """The client's `hooks` section: shell commands per point (run with sh -c, as written)."""

    before_switch: tuple[str, ...] = ()
    after_switch: tuple[str, ...] = ()
    on_failure: tuple[str, ...] = ()
    after_rollback: tuple[str, ...] = ()  # rollback.py: on each host whose current moved back

    @classmethod
    def from_host_data(cls, data: Any) -> Hooks:
        raw = data.get("hooks") or {}
        return cls(**{point: tuple(raw.get(point, ())) for point in HOOK_POINTS})


@dataclass(frozen=True)
class Health:
    """The client's `health` section: an HTTP check of each host after the switch."""

    url: str  # may hold {host}: the host's name in the inventory
    status: int = 200
    contains: str | None = None
    timeout: float = 5
    retries: int = 3
    delay: float = 1

    @classmethod
    def from_host_data(cls, data: Any) -> Health | None:
        raw = data.get("health")
        if not raw:
            return None
        return cls(
            url=raw["url"],
            status=int(raw.get("status", 200)),
            contains=raw.get("contains"),
            timeout=float(raw.get("timeout", 5)),
            retries=int(raw.get("retries", 3)),
            delay=float(raw.get("delay", 1)),
        )

    def url_for(self, host_name: str) -> str:
        return self.url.replace("{host}", host_name)


def webhook_from_host_data(data: Any) -> str | None:
    """The client's notify.webhook URL, or None (notifications are off by default)."""
    return (data.get("notify") or {}).get("webhook")
