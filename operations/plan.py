"""Pure decisions taken from a DeployState: release order, rollback target, what to prune.

Kept apart from the operations so they can be unit-tested without a host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import deploy_log
from .facts import DeployState
from .layout import ASIDE_PREFIX, RELEASES_DIR, TMP_PREFIX
from .release_name import RELEASE_NAME, RELEASE_RE

# Log events that mean "this release was in use at this point", newest last.
_USE_EVENTS = (deploy_log.POPULATED, *deploy_log.MADE_LIVE)
# releases/.tmp-<sha>-<run>[-final]: a copy being built; left over if its run was interrupted.
_BUILD_RE = re.compile(rf"^{re.escape(TMP_PREFIX)}{RELEASE_NAME}-\d+(-final)?$")
# releases/.aside-<sha>-<run>: an edited or incomplete copy, kept until keep_releases drops it.
_ASIDE_RE = re.compile(rf"^{re.escape(ASIDE_PREFIX)}{RELEASE_NAME}-\d+$")


def current_release(state: DeployState) -> str | None:
    """The sha `current` points at, if it points into releases/."""
    target = state.link_target("current")
    if target is None:
        return None
    name = target.rstrip("/").removeprefix("./")
    prefix = f"{RELEASES_DIR}/"
    return (
        name[len(prefix) :] if name.startswith(prefix) and "/" not in name[len(prefix) :] else None
    )


def previous_release(state: DeployState) -> str | None:
    """The rollback target: the newest release `current` was switched to before the live one.

    Releases a rollback moved away from are skipped (rolling back twice goes further back);
    they stay kept, and are named explicitly to roll forward.
    """
    live = current_release(state)
    switched: list[str] = []
    rolled_back: set[str] = set()
    for e in deploy_log.parse(state.log):
        if e.event in deploy_log.MADE_LIVE:
            switched.append(e.release)
            rolled_back.discard(e.release)
            # "from <sha>": that release was rolled back away from, so it is no rollback
            # target until it is switched to again ("named; left <sha>" keeps it one).
            if e.event == deploy_log.ROLLBACK and e.detail.startswith("from "):
                rolled_back.add(e.detail[5:].split(" ", 1)[0])
    for sha in reversed(switched):
        if sha != live and sha not in rolled_back and state.complete(sha):
            return sha
    return None


def release_order(state: DeployState) -> list[str]:
    """Complete releases and aside copies on the host, most recently used first (by the log).

    Releases the log does not mention (copied by hand, log lost) count as the oldest.
    """
    last_use: dict[str, int] = {}
    for i, e in enumerate(deploy_log.parse(state.log)):
        if e.event in _USE_EVENTS:
            last_use[e.release] = i
        elif e.event == deploy_log.ASIDE:
            last_use[e.detail] = i
    kept = [
        name
        for name, entry in state.entries.items()
        if (RELEASE_RE.match(name) and state.complete(name))
        or (entry.kind == "dir" and _ASIDE_RE.match(name))
    ]
    return sorted(kept, key=lambda name: (last_use.get(name, -1), name), reverse=True)


@dataclass
class PrunePlan:
    """What `releases_pruned` would do; names are entries of releases/."""

    delete: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)  # not made by this tool: reported only

    def reasons(self) -> dict[str, str]:
        return {
            name: ("leftover of an interrupted run" if name.startswith(".") else "old")
            for name in self.delete
        }


def plan_prune(state: DeployState, keep: int, protect: tuple[str, ...] = ()) -> PrunePlan:
    """Keep at most `keep` releases, never the live one, the previous one or `protect`.

    Leftovers of interrupted runs (temp copies, incomplete copies moved aside) go first and do
    not count. Anything in releases/ this tool did not make is never deleted, only reported.
    """
    if keep < 1:
        raise ValueError("keep must be at least 1")
    plan = PrunePlan()
    live = current_release(state)
    must_keep = {s for s in (live, previous_release(state), *protect) if s}
    ordered = release_order(state)
    for name, entry in sorted(state.entries.items()):
        if name in ordered or name in must_keep:
            continue
        if entry.kind == "dir" and _BUILD_RE.match(name):
            plan.delete.append(name)
        else:
            plan.foreign.append(name)
    room = keep - len([s for s in must_keep if s in state.entries])
    for sha in ordered:
        if sha in must_keep:
            plan.kept.append(sha)
        elif room > 0:
            plan.kept.append(sha)
            room -= 1
        else:
            plan.delete.append(sha)
    return plan
