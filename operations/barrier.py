"""No host switches `current` unless every targeted host populated the release.

pyinfra runs deploy.py once per host, but imported modules are shared by all hosts: this
module is where the hosts meet. `FAIL_PERCENT = 0` (config.py) already stops the run after a
failed populate; this guard also holds when a CLI flag overrides that.
"""

from __future__ import annotations

from collections.abc import Callable

from pyinfra.api import State
from pyinfra.api.operation import OperationMeta

_POPULATED: dict[str, OperationMeta] = {}


def record_populated(host_name: str, meta: OperationMeta) -> None:
    """Remember the populate operation of `host_name`."""
    _POPULATED[host_name] = meta


def all_hosts_populated(state: State) -> Callable[[], bool]:
    """An `_if` callable: true only when populate succeeded on every host in --limit."""

    def check() -> bool:
        targeted = [h.name for h in state.inventory if state.is_host_in_limit(h)]
        return all(
            name in _POPULATED and _POPULATED[name].is_complete() and _POPULATED[name].did_succeed()
            for name in targeted
        )

    return check
