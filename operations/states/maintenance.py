"""The maintenance flag (client option `maintenance: true`): `shared/.maintenance` exists while
the before_switch hooks run (e.g. Craft's migrations), so the web server answers 503 with
Retry-After instead of serving the old release against a half-migrated database (see
docs/web-server.md, "Maintenance during migrations"). Craft's own `craft off` is undone by
`craft up` applying project config, hence a file the web server checks.

`maintenance_started` raises the flag on every host right before the before_switch hooks
(also on hosts where a hook runs only once: they all serve the same database);
`maintenance_ended` takes it down right after the switch, and `when_host_stops` when the
host's deploy fails or the run stops.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from pyinfra import host, logger
from pyinfra.api import FunctionCommand, QuoteString, State, StringCommand
from pyinfra.facts.files import File

from ..common import say, wanted_state, when_host_stops
from ..context import run_context
from ..facts import deploy_state
from ..layout import RELEASES_DIR, SHARED_DIR, Deploy
from ..plan import current_release
from ..pyinfra_adapter import run_now

FLAG = f"{SHARED_DIR}/.maintenance"


def flag_path(root: str) -> str:
    return f"{root}/{FLAG}"


def raise_flag(state: State, host: Any, root: str) -> bool:
    """Create the flag on `target` now (a FunctionCommand, so that only a flag this run
    raised is taken down when the host stops). False if it could not be created."""
    target = host  # FunctionCommand passes (state, host) to a function with these names
    flag = flag_path(root)
    ok, output = run_now(target, StringCommand("touch", QuoteString(flag)))
    if not ok:
        target.log_styled(f"could not create {FLAG}: " + " ".join(output.stderr_lines), fg="red",
                          log_func=logger.error)  # fmt: skip
        return False
    run = run_context(state)
    run.maintenance[target.name] = flag
    when_host_stops(state, "maintenance flag down", 20, lambda t: _take_down(state, t))
    return True


def _take_down(state: State, target: Any) -> None:
    """Remove the flag this run raised on `target` (a failed or stopped deploy)."""
    flag = run_context(state).maintenance.pop(target.name, None)
    if flag is None:
        return
    ok, _ = run_now(target, StringCommand("rm", "-f", QuoteString(flag)))
    target.log(f"{FLAG} {'removed' if ok else 'could not be removed'} (the deploy stopped)",
               log_func=logger.warning)  # fmt: skip


@wanted_state
def maintenance_started(deploy: Deploy) -> Generator:
    """
    Ensure ``shared/.maintenance`` exists while the release's before_switch hooks are to run
    (the release is not live on this host yet); nothing while it is live (a rerun).

    + deploy: the host's Deploy settings
    """
    state = deploy_state(deploy.layout, deploy.release)
    if current_release(state) == deploy.release:
        return
    say(f"{FLAG}: up while the before_switch hooks of {RELEASES_DIR}/{deploy.release} run, "
        "removed after the switch (maintenance)")  # fmt: skip
    yield FunctionCommand(raise_flag, (state.root,), {})


@wanted_state
def maintenance_ended(deploy: Deploy) -> Generator:
    """
    Ensure ``shared/.maintenance`` does not exist (once the host switched): the site is served
    again. One read of the flag per run; removes nothing else.

    + deploy: the host's Deploy settings
    """
    root = deploy_state(deploy.layout, deploy.release).root
    flag = flag_path(root)
    run = run_context(host.state)
    if host.get_fact(File, path=flag) is None and host.name not in run.maintenance:
        return  # the flag is raised while executing: a dry run sees it as coming and going
    say(f"{FLAG}: remove (maintenance over)")
    run.maintenance.pop(host.name, None)
    yield StringCommand("rm", "-f", QuoteString(flag))
