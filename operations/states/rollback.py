"""Wanted state of rollback.py: `current` points at an earlier (or a named) release.

The target is the host's previous release by its deploy log (plan.previous_release: the
release `current` pointed at before the live one, skipping releases a rollback moved away
from), or the release named with ``--data 'release="<sha>"'``. All targeted hosts or none:
`rollback_target_ready` checks every host first (registered with the barrier), and the
switch only happens when it succeeded on every host.
"""

from __future__ import annotations

import difflib
from collections.abc import Generator

from pyinfra import host

from .. import deploy_log
from ..common import preparing, refuse, say, wanted_state
from ..context import run_context
from ..facts import DeployState, deploy_state
from ..layout import CURRENT_LINK, RELEASES_DIR, Deploy, Layout
from ..live import NO_RELEASE
from ..plan import current_release, previous_release
from ..release_name import RELEASE_RE, SHA_LENGTH
from . import lock
from .switch import current_moved, move_current


def match_release(names: list[str], named: str) -> tuple[str | None, str]:
    """(the release among `names` that `named` means, or None; why not).

    `named` is a sha of 7 to 40 hex digits, optionally with a `-<digest>`; release folders
    are `<sha12>` or `<sha12>-<digest8>`. A short sha names the release whose sha starts with
    it when exactly one does; several are listed (name more digits), none gets the closest
    names (or the releases there are).
    """
    if named in names:
        return named, ""
    sha, _, digest = named.partition("-")
    sha = sha[:SHA_LENGTH]
    found = [
        name
        for name in names
        if name.partition("-")[0].startswith(sha)
        and (not digest or name.partition("-")[2] == digest)
    ]
    if len(found) == 1:
        return found[0], ""
    if found:
        return None, (
            f"{named} matches {len(found)} releases on this host ({', '.join(sorted(found))}): "
            "name one with more digits"
        )
    near = difflib.get_close_matches(named, names, n=3, cutoff=0.5)
    if near:
        hint = f" (did you mean {' or '.join(near)}?)"
    else:
        hint = f" (releases here: {', '.join(sorted(names)) or 'none'})"
    return None, f"{RELEASES_DIR}/{named} is not a complete release on this host{hint}"


def find_target(state: DeployState, named: str | None) -> tuple[str | None, str]:
    """(release to point current at, or None; why not) for one host's state."""
    if named is not None:
        names = [n for n in state.entries if RELEASE_RE.match(n) and state.complete(n)]
        return match_release(names, named)
    target = previous_release(state)
    if target is None:
        return None, "the deploy log names no earlier release that is still complete here"
    return target, ""


def planned_target(deploy: Deploy, named: str | None) -> str | None:
    """The host's target as read while the deploy file loads (used to name the operations;
    re-checked under the lock). Under `-y` this read takes the deploy lock when it may, and
    serves the execute phase then (lock.read_at_load)."""
    target, _ = find_target(lock.read_at_load(deploy, NO_RELEASE), named)
    return target


@wanted_state
def rollback_target_ready(layout: Layout, named: str | None, planned: str | None) -> Generator:
    """
    Ensure the rollback target is a complete release on this host (else refuse, naming it).

    + layout: the host's Layout
    + named: the release the user named, or None for the previous one
    + planned: the target found when the run started

    **Example:**

    .. code:: python

        run.before_switch(rollback.rollback_target_ready(
            name="rollback target present", layout=layout, named=None, planned=target))
    """
    state = deploy_state(layout, NO_RELEASE)
    target, why = find_target(state, named)
    if target is None:
        yield from refuse(f"cannot roll back: {why}; nothing was switched on any host")
        return
    if planned is not None and target != planned:
        yield from refuse(
            f"cannot roll back: the target changed to {target} while the run started "
            f"(was {planned}); run it again"
        )
        return
    if not preparing():
        run_context(host.state).rollback_targets[host.name] = target


@wanted_state
def targets_agree(named: str | None) -> Generator:
    """
    Ensure every targeted host rolls back to the same release (else refuse, naming them).

    + named: the release the user named (then they agree by construction)

    Checked while executing, when every host has found its target.
    """
    if preparing() or named is not None:
        return
    targets = run_context(host.state).rollback_targets
    if len(set(targets.values())) > 1:
        found = ", ".join(f"{name}: {sha}" for name, sha in sorted(targets.items()))
        yield from refuse(
            f"cannot roll back: the hosts' previous releases differ ({found}); name one with "
            "--data 'release=\"<sha>\"'; nothing was switched on any host"
        )


@wanted_state
def current_rolled_back(
    layout: Layout, target: str | None, by: str, named: bool, last: bool = False
) -> Generator:
    """
    Ensure ``current`` points at ``releases/<target>``, switched by rename(2), and log it.

    + layout: the host's Layout
    + target: the release found when the run started (the one rollback_target_ready found
      while executing wins)
    + by: user@machine, for the deploy log
    + named: the user named the target; then the release left is not marked as rolled back
      from (so a "roll forward" keeps the older release as the rollback target)
    + last: nothing configured after this operation runs a command on the host (no ``php``
      step, no after_rollback hooks): then, if the docroot link is right already, the switch
      gives the deploy lock back in the same command (lock.give_back_with)

    **Example:**

    .. code:: python

        rollback.current_rolled_back(name="current rolled back", layout=layout, target=t,
                                     by=by, named=False, _if=run.all_hosts_ready)
    """
    target = run_context(host.state).rollback_targets.get(host.name, target)
    if target is None:
        return
    state = deploy_state(layout, NO_RELEASE)
    have = state.link_target("current")
    want = f"{RELEASES_DIR}/{target}"
    if have == want:
        return
    was = current_release(state)
    how = "named; left " if named else "from "  # plan.previous_release skips "from" releases
    say(f"{CURRENT_LINK}: {have or '(none)'} -> {want}")
    line = deploy_log.line(deploy_log.ROLLBACK, target, by, f"{how}{was or '-'}")
    command = move_current(state.root, target, line)
    if last and state.link_target("docroot") == f"{CURRENT_LINK}/{layout.docroot}":
        command = lock.give_back_with(command)  # docroot_linked will have nothing to do
    yield command
    return current_moved(state, target, line)
