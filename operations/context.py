"""What the hosts of one pyinfra run share: one RunContext per run, made when first asked for.

pyinfra runs deploy.py once per host, in one process, operation by operation across all hosts.
Whatever the hosts coordinate through (the all-hosts barrier before the switch, who holds the
deploy lock, health results, rollback targets, the cache of each host's last read) lives in the
RunContext of that run (that pyinfra State), never in module globals and never computed at
import time: two runs in one process (the test suite's API runs) do not see each other.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyinfra.api import State

if TYPE_CHECKING:
    from pyinfra.api.operation import OperationMeta

    from .facts import DeployState, LockFold

    Read = tuple[tuple, DeployState]


def _run_id() -> str:
    return f"{int(time.time())}{os.getpid() % 100000:05d}"


@dataclass(eq=False)
class RunContext:
    """The shared state of one run. Fields are keyed by host name where they are per host."""

    # Temporary and aside names carry it (releases/.tmp-<sha>-<id>), so a run never reuses a
    # leftover of an interrupted one; its first digits are the run's start time.
    id: str = field(default_factory=_run_id)
    token: str = field(default_factory=lambda: uuid.uuid4().hex)  # the deploy lock's owner
    started: float = field(default_factory=time.time)
    started_monotonic: float = field(default_factory=time.monotonic)
    controller: str = field(default_factory=socket.gethostname)  # the machine running pyinfra

    # facts.deploy_state: each host's last read, reused until an operation changes the host
    reads: dict[str, Read] = field(default_factory=dict)
    quiet: set[tuple[str, str]] = field(default_factory=set)  # (host, op hash): no change
    expected: dict[tuple[str, str], Read] = field(default_factory=dict)  # state an op leaves
    lock_fold: dict[str, LockFold] = field(default_factory=dict)  # the next read takes the lock
    read_at_load: set[str] = field(default_factory=set)  # hosts read while loading (lock.py)
    first_read_done: Any = None  # set once the first host's read at load is done (lock.py)
    first_read: DeployState | None = None  # that read

    # The all-hosts barrier: operations that must succeed on every host before any switch.
    required: dict[str, list[OperationMeta]] = field(default_factory=dict)
    # Once this operation succeeded on a host, its on_failure hooks run if the run fails.
    arms_on_failure: dict[str, OperationMeta] = field(default_factory=dict)
    finished: set[str] = field(default_factory=set)  # hosts that got through the whole run
    # host -> (Deploy, live.Hook entries, php_binary)
    on_failure: dict[str, tuple[Any, tuple[Any, ...], str]] = field(default_factory=dict)

    held: dict[str, str] = field(default_factory=dict)  # host -> root where we hold the lock
    given_back_with: set[tuple[str, str]] = field(default_factory=set)  # (host, op hash)
    maintenance: dict[str, str] = field(default_factory=dict)  # host -> flag this run raised
    on_stop: dict[tuple[int, str], Callable[[Any], None]] = field(default_factory=dict)
    health: dict[str, str | None] = field(default_factory=dict)  # host -> None or the failure
    rollback_targets: dict[str, str] = field(default_factory=dict)  # host -> release
    notified: bool = False  # the webhook was told (once per run)
    printed: set[str] = field(default_factory=set)  # hosts whose status report was printed
    refused: set[str] = field(default_factory=set)  # hosts that refused while preparing
    pending: dict[str, Any] = field(default_factory=dict)  # host -> pending.Pending
    handlers: set[str] = field(default_factory=set)  # callback handlers added to the State
    # What a dry run found, per host (see dry_summary): the switch, the other changes, stops
    dry_switches: dict[str, tuple[str, str]] = field(default_factory=dict)
    dry_changes: dict[str, list[str]] = field(default_factory=dict)  # host -> op hashes
    dry_stops: dict[str, str] = field(default_factory=dict)
    interrupted: int = 0  # the signal (SIGINT, SIGTERM) that asked the run to stop

    @property
    def stamp(self) -> str:
        """The run's start as a UTC stamp for folder names (e.g. 2026-11-30T135900Z)."""
        return time.strftime("%Y-%m-%dT%H%M%SZ", time.gmtime(int(self.started)))

    def require_before_switch(self, host_name: str, meta: OperationMeta) -> OperationMeta:
        """Remember an operation of `host_name` that must succeed before any host switches."""
        self.required.setdefault(host_name, []).append(meta)
        return meta

    def all_hosts_ready(self, state: State) -> Callable[[], bool]:
        """An `_if` callable: true only when every required operation succeeded on every host
        in --limit (a host that failed to connect recorded none, so it blocks the switch too).
        """

        def check() -> bool:
            targeted = [h.name for h in state.inventory if state.is_host_in_limit(h)]
            return all(
                self.required.get(name)
                and all(meta.is_complete() and meta.did_succeed() for meta in self.required[name])
                for name in targeted
            )

        return check

    def held_back(self, state: State) -> str | None:
        """Why no host may switch yet, in words (None: every targeted host is ready).

        Names, per host, the first required operation it did not get through: those that
        failed if any did, else those not run yet (a host that never got that far as well).
        """
        from .pyinfra_adapter import op_name

        failed, pending = [], []
        for name in sorted(h.name for h in state.inventory if state.is_host_in_limit(h)):
            metas = self.required.get(name)
            if not metas:
                pending.append(f"{name} did not get that far")
                continue
            for meta in metas:
                if meta.is_complete() and meta.did_succeed():
                    continue
                what = f'"{op_name(state, meta)}"'
                if meta.is_complete():
                    failed.append(f"{name} failed at {what}")
                else:
                    pending.append(f"{name} has not run {what}")
                break
        return "; ".join(failed or pending) or None

    def on_failure_armed(self, host_name: str) -> bool:
        """The host's release was populated in this run and the run did not get through."""
        meta = self.arms_on_failure.get(host_name)
        return (
            host_name not in self.finished
            and meta is not None
            and meta.is_complete()
            and meta.did_succeed()
        )


_RUNS: weakref.WeakKeyDictionary[State, RunContext] = weakref.WeakKeyDictionary()


def run_context(state: State) -> RunContext:
    """The RunContext of the run `state` belongs to (made on first use)."""
    context = _RUNS.get(state)
    if context is None:
        context = _RUNS[state] = RunContext()
    return context
