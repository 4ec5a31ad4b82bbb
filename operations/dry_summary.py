"""The last words of a dry run (`--dry`): per host, in words, what the run would switch and
what else it would change, or why it would stop.

pyinfra's own table lists operations with changes, but not what they do, and ends with its
"may not include every change" notice. While preparing, the operations record here what they
found (see `record_change`, `record_switch`, `record_stop`); at exit, `print_summary` says it.
"""

from __future__ import annotations

import atexit
import sys
from collections.abc import Iterable
from typing import Any

from pyinfra.api import State

from . import pyinfra_adapter as adapter
from .context import RunContext, run_context


def summary_lines(
    hosts: Iterable[str],
    switches: dict[str, tuple[str, str]],
    changes: dict[str, list[tuple[str, str]]],
    stops: dict[str, str],
) -> list[str]:
    """The summary, one line per host (or per host that would stop).

    `switches`: host -> (switch operation hash, "current A -> B" or "current stays at B");
    `changes`: host -> [(operation hash, name)] of operations that would change something;
    `stops`: host -> why the run would stop there.
    """
    if stops:
        return ["the deploy would stop, so no host would switch:"] + [
            f"would stop: {name}: {stops[name]}" for name in sorted(stops)
        ]
    lines = []
    for name in sorted(hosts):
        switch_hash, switch = switches.get(name, (None, None))
        others = [op for op_hash, op in changes.get(name, []) if op_hash != switch_hash]
        if switch is None:
            lines.append(f"{name}: " + ("; ".join(others) if others else "nothing would change"))
            continue
        rest = f"also: {', '.join(others)}" if others else "nothing else would change"
        lines.append(f"{name}: {switch}; {rest}")
    return lines


def install(state: State) -> None:
    """In a `--dry` run, print the summary when the process ends: after pyinfra's own output."""
    run = run_context(state)
    if "dry-summary" in run.handlers or "--dry" not in adapter.command_line():
        return
    run.handlers.add("dry-summary")
    atexit.register(print_summary, state)


def print_summary(state: State) -> None:
    if adapter.executing(state):
        return
    run = run_context(state)
    targets = [h for h in state.inventory if state.is_host_in_limit(h)]
    if not run.dry_stops and not all(_prepared(run, target) for target in targets):
        return  # stopped while preparing (Ctrl-C, an error): a summary would be a guess
    hosts = [target.name for target in targets]
    changes = {
        name: [(op_hash, adapter.op_name_of_hash(state, op_hash)) for op_hash in hashes]
        for name, hashes in run.dry_changes.items()
    }
    lines = summary_lines(hosts, run.dry_switches, changes, run.dry_stops)
    sys.stderr.write("\n--> Dry run, nothing was changed. What the run would do:\n")
    sys.stderr.write("".join(f"    {line}\n" for line in lines))
    sys.stderr.flush()


def _prepared(run: RunContext, target: Any) -> bool:
    """Every operation of the host said, while preparing, whether it would change something."""
    changed = set(run.dry_changes.get(target.name, ()))
    return all(
        op_hash in changed or (target.name, op_hash) in run.quiet
        for op_hash in adapter.host_op_hashes(target)
    )
