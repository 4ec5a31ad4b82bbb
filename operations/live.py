"""Settings for running a live site: which deploy files name no new release, hooks, health, notify.

`rollback.py`, `status.py` and `restore_dump.py` do not upload the source, so the inventory
does not name a release after the source's HEAD for them (see config.inventory_hosts): for
them `--data 'release="<sha>"'` only has to be a well-formed sha, which must exist on the hosts.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
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
class Hook(HostDataValue):
    """One hook entry: a shell command (run with sh -c, as written) and where it runs.

    The client file gives a string (every host) or `{run: ..., once: true}` (one host: the
    first by name of those it could run on) or `{run: ..., hosts: [web1]}` (the hosts named).
    """

    run: str
    once: bool
    hosts: tuple[str, ...]  # empty: not limited to named hosts

    @classmethod
    def from_entry(cls, entry: str | dict[str, Any]) -> Hook:
        """From a (validated, defaults filled) entry of a hook list in the client file."""
        if isinstance(entry, str):
            return cls(run=entry, once=False, hosts=())
        # No `hosts`: the hook is not limited to named hosts (not a default: there is no list).
        return cls(run=entry["run"], once=entry["once"], hosts=tuple(entry.get("hosts", ())))

    def runs_on(self, host_name: str, candidates: Iterable[str]) -> bool:
        """Whether the hook runs on `host_name`, of the hosts `candidates` it could run on
        (the run's targeted hosts; for on_failure, those whose release was populated)."""
        if self.once:
            return host_name == once_host(candidates)
        return host_name in self.hosts if self.hosts else True

    def where(self, candidates: Iterable[str]) -> str:
        """Where it runs, in words for the dry run: "" (every host), " (once: on web1)"."""
        if self.once:
            return f" (once: on {once_host(candidates) or 'no host'})"
        if self.hosts:
            return f" (on {', '.join(self.hosts)})"
        return ""


def once_host(candidates: Iterable[str]) -> str | None:
    """The host a `once` hook runs on: the first by name, like the deploy lock's first host."""
    return min(candidates, default=None)


@dataclass(frozen=True)
class Hooks(HostDataValue):
    """The client's `hooks` section: the hook entries per point."""

    before_switch: tuple[Hook, ...]
    after_switch: tuple[Hook, ...]
    on_failure: tuple[Hook, ...]
    after_rollback: tuple[Hook, ...]  # rollback.py: on each host whose current moved back
    php_binary: str  # the host's PHP CLI: $ATOMIC_PHP in every hook's environment
    maintenance: bool  # shared/.maintenance exists while before_switch hooks run

    @classmethod
    def from_section(
        cls, section: dict[str, list[Any]], *, php_binary: str, maintenance: bool
    ) -> Hooks:
        """From the client file's (validated, defaults filled) hooks section, php_binary and
        maintenance."""
        points = {point: tuple(map(Hook.from_entry, section[point])) for point in HOOK_POINTS}
        return cls(**points, php_binary=php_binary, maintenance=maintenance)


def hook_errors(doc: dict[str, Any]) -> list[str]:
    """The hooks section's rules beyond the schema: `once` and `hosts` not together, and
    every name in `hosts` is a host of the client."""
    names = [h["name"] for h in doc["hosts"]]
    errors = []
    for point in HOOK_POINTS:
        for i, entry in enumerate(doc["hooks"].get(point, [])):
            if not isinstance(entry, dict):
                continue
            where = f"hooks.{point}[{i}]"
            if entry.get("once") and entry.get("hosts"):
                errors.append(f"{where}: give once or hosts, not both")
            for j, name in enumerate(entry.get("hosts", [])):
                if name not in names:
                    errors.append(f"{where}.hosts[{j}]: '{name}' is not a host of this client "
                                  f"(hosts: {', '.join(names)})")  # fmt: skip
    return errors


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
