"""Wanted state: at most N releases are kept."""

from __future__ import annotations

import posixpath
from collections.abc import Generator
from dataclasses import replace

from pyinfra import host, logger
from pyinfra.api import QuoteString, StringCommand

from .. import deploy_log
from ..common import chain, preparing, say, wanted_state
from ..context import run_context
from ..facts import deploy_state
from ..layout import ASIDE_PREFIX, RELEASES_DIR, Deploy
from ..plan import as_switched, plan_prune


@wanted_state
def releases_pruned(deploy: Deploy) -> Generator:
    """
    Ensure at most ``keep_releases`` releases are kept under ``releases/``.

    + deploy: the host's Deploy settings (keep_releases, release)

    ``keep_releases`` counts releases that went live, ordered by the deploy log (sha names
    carry no order and mtimes lie). Releases that never went live (a failed before_switch
    hook or health check, a deploy stopped before its switch) and aside copies only fill
    the slots left, and go first; leftovers of interrupted runs always go. The output names
    each for what it is. Never deleted: the release ``current`` points at, the previous one
    (the rollback target), the one being deployed, and aside copies made by this run (they
    go at a later run). Anything in ``releases/`` not made by this tool is reported, never
    deleted.

    **Example:**

    .. code:: python

        prune.releases_pruned(name="keep N releases", deploy=deploy)
    """
    state = deploy_state(deploy.layout, deploy.release)
    # A dry run shows the pruning that follows the switch, not one of the state before it.
    seen = as_switched(state, deploy.release) if preparing() else state
    fresh = f"{ASIDE_PREFIX}{deploy.release}-{run_context(host.state).id}"  # see release.py
    plan = plan_prune(seen, deploy.keep_releases, protect=(deploy.release,), spare=(fresh,))
    for name in plan.foreign:
        host.log(
            f"{RELEASES_DIR}/{name}: not made by atomic-deploy, left alone", log_func=logger.warning
        )
    if not plan.delete:
        return
    steps, logged = [], []
    for name in plan.delete:
        say(f"remove {RELEASES_DIR}/{name} ({plan.reasons[name]}; keep {deploy.keep_releases})")
        path = posixpath.join(state.root, RELEASES_DIR, name)
        steps.append(StringCommand("rm", "-rf", QuoteString(path)))
        if not name.startswith("."):
            logged.append(deploy_log.line(deploy_log.PRUNE, name, deploy.deployed_by))
            steps.append(deploy_log.append_command(state.root, logged[-1]))
    yield chain(*steps)
    kept = {name: entry for name, entry in state.entries.items() if name not in plan.delete}
    return replace(state, entries=kept, log=[*state.log, *logged])
