"""Pure decisions taken from a DeployState: release order, rollback target, what to prune.

Kept apart from the operations so they can be unit-tested without a host.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace

from . import deploy_log
from .facts import DeployState, Entry
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


def _last_use(events: list[deploy_log.Event]) -> dict[str, int]:
    """Release or aside copy -> index of the last log event that used it (built, made live,
    moved aside)."""
    last_use: dict[str, int] = {}
    for i, e in enumerate(events):
        if e.event in _USE_EVENTS:
            last_use[e.release] = i
        elif e.event == deploy_log.ASIDE:
            last_use[deploy_log.aside_of(e.detail)[0]] = i
    return last_use


def _newest_first(names: list[str], last_use: dict[str, int]) -> list[str]:
    return sorted(names, key=lambda name: (last_use.get(name, -1), name), reverse=True)


def release_order(state: DeployState) -> list[str]:
    """Complete releases and aside copies on the host, most recently used first (by the log).

    Releases the log does not mention (copied by hand, log lost) count as the oldest.
    """
    kept = [
        name
        for name, entry in state.entries.items()
        if (RELEASE_RE.match(name) and state.complete(name))
        or (entry.kind == "dir" and _ASIDE_RE.match(name))
    ]
    return _newest_first(kept, _last_use(deploy_log.parse(state.log)))


def went_live(events: list[deploy_log.Event]) -> set[str]:
    """Releases the log shows serving the site: switched or rolled back to, and not switched
    straight back because their health check failed."""
    times: dict[str, int] = {}
    for e in events:
        if e.event in deploy_log.MADE_LIVE:
            times[e.release] = times.get(e.release, 0) + 1
        elif e.event == deploy_log.HEALTH_FAILED and times.get(e.release):
            times[e.release] -= 1  # that switch was undone (or the site served a failing one)
    return {sha for sha, n in times.items() if n > 0}


LEFTOVER = "leftover of an interrupted run"
OLD = "old"
_WHY_ASIDE = {
    deploy_log.EDITED: "because it was edited on the server",
    deploy_log.INCOMPLETE: "because it was incomplete",
    deploy_log.REPLACED: "because another upload took its name",
    deploy_log.FOREIGN: "because it was not made by atomic-deploy",
}


def _never_live_reason(sha: str, events: list[deploy_log.Event]) -> str:
    """ "never went live", with the failure the log records for it, if any."""
    for e in reversed(events):
        if e.release == sha and e.event == deploy_log.HEALTH_FAILED:
            return "never went live: its health check failed"
        if e.release == sha and e.event == deploy_log.HOOK_FAILED:
            if e.detail.startswith("before_switch:"):
                return "never went live: its before_switch hook failed"
    return "never went live"


def _aside_why(name: str, events: list[deploy_log.Event]) -> str:
    """Why the aside copy `name` was put aside (deploy_log.EDITED, FOREIGN, ...; "" unknown)."""
    for e in reversed(events):
        if e.event == deploy_log.ASIDE and deploy_log.aside_of(e.detail)[0] == name:
            return deploy_log.aside_of(e.detail)[1]
    return ""


def _aside_reason(name: str, events: list[deploy_log.Event]) -> str:
    """ "copy put aside on <date> because ...", from its ASIDE event or else its run id."""
    moved = [e for e in events if e.event == deploy_log.ASIDE]
    event = next((e for e in reversed(moved) if deploy_log.aside_of(e.detail)[0] == name), None)
    try:
        when = time.strptime(event.when, "%Y-%m-%dT%H:%M:%SZ") if event else None
    except ValueError:  # a hand-edited line
        when = None
    run_id = name.rsplit("-", 1)[1]
    if when is None and len(run_id) == 15:  # context._run_id: Unix time, then 5 pid digits
        when = time.gmtime(int(run_id[:10]))
    on = time.strftime(" on %Y-%m-%d %H:%M UTC", when) if when else ""
    why = deploy_log.aside_of(event.detail)[1] if event else ""
    return f"copy put aside{on} {_WHY_ASIDE.get(why, '(edited or incomplete)')}"


def as_switched(state: DeployState, sha: str) -> DeployState:
    """`state` as pruning finds it once a deploy has built `sha` and switched to it.

    What a dry run plans pruning against: pyinfra prepares every operation before any runs,
    so the read still shows the release that is about to be replaced as the live one.
    """
    was = current_release(state)
    if was == sha:
        return state
    built = [] if state.complete(sha) else [deploy_log.line(deploy_log.POPULATED, sha, "")]
    switched = deploy_log.line(deploy_log.SWITCH, sha, "", f"from {was or '-'}")
    return replace(
        state,
        current=f"link {RELEASES_DIR}/{sha}",
        entries={**state.entries, sha: Entry(sha, "dir", sha)},
        log=[*state.log, *built, switched],
    )


@dataclass
class PrunePlan:
    """What `releases_pruned` would do; names are entries of releases/."""

    delete: list[str] = field(default_factory=list)  # in the order they go
    kept: list[str] = field(default_factory=list)  # most recently used first
    foreign: list[str] = field(default_factory=list)  # not made by this tool: reported only
    reasons: dict[str, str] = field(default_factory=dict)  # deleted name -> what it is


def plan_prune(
    state: DeployState, keep: int, protect: tuple[str, ...] = (), spare: tuple[str, ...] = ()
) -> PrunePlan:
    """Keep the `keep` releases that went live most recently; never the live one, the
    previous one or `protect`.

    Releases that never went live (a failed before_switch hook or health check, a deploy
    stopped before its switch) and aside copies only fill slots the once-live releases leave
    free, and go first: never-live releases, then aside copies, then the oldest once-live
    releases. A release the log does not show being built (copied by hand, log lost) counts
    as once-live, oldest. `spare` (aside copies made by this run) are kept without taking a slot.
    Leftovers of interrupted runs always go. Anything in releases/ this tool did not make is
    never deleted, only reported.
    """
    if keep < 1:
        raise ValueError("keep must be at least 1")
    plan = PrunePlan()
    events = deploy_log.parse(state.log)
    last_use = _last_use(events)
    live = went_live(events)
    built = {e.release for e in events if e.event == deploy_log.POPULATED}
    must_keep = {s for s in (current_release(state), previous_release(state), *protect) if s}
    once_live, never_live, aside = [], [], []
    for name, entry in sorted(state.entries.items()):
        if name in must_keep or name in spare:
            plan.kept.append(name)
        elif RELEASE_RE.match(name) and state.complete(name):
            (never_live if name in built and name not in live else once_live).append(name)
        elif entry.kind == "dir" and _ASIDE_RE.match(name):
            if _aside_why(name, events) == deploy_log.FOREIGN:
                plan.foreign.append(name)  # someone else's folder: moved aside, never deleted
            else:
                aside.append(name)
        elif entry.kind == "dir" and _BUILD_RE.match(name):
            plan.delete.append(name)
            plan.reasons[name] = LEFTOVER
        else:
            plan.foreign.append(name)
    room = keep - len([s for s in must_keep if s in state.entries])
    ranked = [*_newest_first(once_live, last_use), *_newest_first(aside, last_use),
              *_newest_first(never_live, last_use)]  # fmt: skip
    plan.kept += ranked[: max(room, 0)]
    for name in reversed(ranked[max(room, 0) :]):
        plan.delete.append(name)
        if name in aside:
            plan.reasons[name] = _aside_reason(name, events)
        elif name in never_live:
            plan.reasons[name] = _never_live_reason(name, events)
        else:
            plan.reasons[name] = OLD
    plan.kept = _newest_first(plan.kept, last_use)
    return plan
