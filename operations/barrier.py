"""No host switches `current` unless every targeted host is ready: populated (and dumped).

pyinfra runs deploy.py once per host, but imported modules are shared by all hosts: this
module is where the hosts meet. `FAIL_PERCENT = 0` (config.py) already stops the run after a
failed populate; this guard also holds when a CLI flag overrides that.
"""

from __future__ import annotations

from collections.abc import Callable

from pyinfra.api import State
from pyinfra.api.operation import OperationMeta

_REQUIRED: dict[str, list[OperationMeta]] = {}


def required_before_switch(host_name: str, meta: OperationMeta) -> OperationMeta:
    """Remember an operation of `host_name` that must succeed before any host switches."""
    _REQUIRED.setdefault(host_name, []).append(meta)
    return meta


def all_hosts_ready(state: State) -> Callable[[], bool]:
    """An `_if` callable: true only when every required operation succeeded on every host
    in --limit (a host that failed to connect recorded none, so it blocks the switch too)."""

    def check() -> bool:
        targeted = [h.name for h in state.inventory if state.is_host_in_limit(h)]
        return all(
            _REQUIRED.get(name)
            and all(meta.is_complete() and meta.did_succeed() for meta in _REQUIRED[name])
            for name in targeted
        )

    return check
