"""Wanted states around the switch that run the client's hooks (shell commands it wrote).

Each hook runs on the host as the SSH user, in the new release's folder, as
``cd releases/<sha> && env ATOMIC_...=... sh -c '<hook>'``: the command runs exactly as
written, the environment values are quoted. Its output (stdout and stderr) is shown,
prefixed by the host, whether it succeeds or not. A failing hook is recorded in the deploy
log (``hook-failed``).

* ``before_switch`` runs once every host has the release, only while the release is not live
  yet; deploy.py registers it with the barrier, so a failure means no host switches.
* ``after_switch`` runs only on hosts whose ``current`` just changed.
* ``after_rollback`` (rollback.py) runs only on hosts whose ``current`` just moved back, in
  the release rolled back to; ATOMIC_PREVIOUS_RELEASE is the release it left.
* ``on_failure`` runs on every host whose release was populated in this run, when the run
  fails later: the failing host when its operation fails, the others when pyinfra stops the
  run (see `arm_on_failure`). Their own failures are only reported.

An entry with ``once: true`` runs on one host only, the first targeted host by name (for
on_failure: of those whose release was populated); one with ``hosts: [...]`` only on those
(live.Hook.runs_on). The output names where such a hook runs, on every host, dry run too.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from pyinfra import host, logger
from pyinfra.api import FunctionCommand, QuoteString, State, StringCommand
from pyinfra.api.host import Host

from .. import deploy_log
from ..common import say, wanted_state, when_host_stops
from ..context import run_context
from ..facts import DeployState, deploy_state, read_deploy_tree
from ..layout import RELEASES_DIR, Deploy, release_path
from ..live import Hook, Hooks
from ..plan import current_release, previous_release
from ..pyinfra_adapter import assign, run_now


def hook_env(
    root: str, sha: str, previous: str | None, host_name: str, php: str
) -> dict[str, str]:
    """The environment a hook sees; `php` is the host's php_binary."""
    return {
        "ATOMIC_HOST": host_name,
        "ATOMIC_PHP": php,
        "ATOMIC_DEPLOY_ROOT": root,
        "ATOMIC_RELEASE": sha,
        "ATOMIC_RELEASE_PATH": release_path(root, sha),
        "ATOMIC_PREVIOUS_RELEASE": previous or "",
    }


def hook_command(folder: str, env: dict[str, str], command: str) -> StringCommand:
    """cd into `folder` and run `command` (as written) with `env`; output merged into stdout."""
    assigns = [assign(k, v) for k, v in env.items()]
    return StringCommand(
        "cd", QuoteString(folder), "&&", "env", *assigns, "sh", "-c", QuoteString(command), "2>&1"
    )


def _previous(state: DeployState, sha: str) -> str | None:
    """The release live before `sha`: the live one now, or (after the switch) the one before;
    after a rollback to `sha`, the release it left."""
    live = current_release(state)
    if live != sha:
        return live
    events = deploy_log.parse(state.log)
    if events and events[-1].event == deploy_log.ROLLBACK and events[-1].release == sha:
        left = events[-1].detail.removeprefix("named; left ").removeprefix("from ")
        return left.split(" ", 1)[0].strip("-") or None
    return previous_release(state)


def targeted_hosts() -> list[str]:
    """The names of the hosts this run targets (--limit respected), sorted."""
    state = host.state
    return sorted(h.name for h in state.inventory if state.is_host_in_limit(h))


def _prepared(state: DeployState, deploy: Deploy, hooks: Hooks, commands: list[str]) -> list:
    previous = _previous(state, deploy.release)
    env = hook_env(state.root, deploy.release, previous, host.name, hooks.php_binary)
    folder = release_path(state.root, deploy.release)
    return [(command, hook_command(folder, env, command)) for command in commands]


def run_hooks(
    state: State, host: Host, point: str, root: str, release: str, by: str, hooks: list
) -> bool:
    """Run hooks one after the other, showing their output; stop at the first failure."""
    for text, command in hooks:
        ok, output = run_now(host, command, print_input=state.print_input)
        lines = output.stdout_lines + output.stderr_lines
        if ok:
            host.log(f"{point} hook `{text}`: ok", log_func=logger.info)
            for line in lines:
                host.log(f"  {line}", log_func=logger.info)
            continue
        host.log_styled(f"{point} hook `{text}` failed:", fg="red", log_func=logger.error)
        for line in lines:
            host.log_styled(f"  {line}", fg="red", log_func=logger.error)
        line = deploy_log.line(deploy_log.HOOK_FAILED, release, by, f"{point}: {text}")
        run_now(host, deploy_log.append_command(root, line))
        return False
    return True


@wanted_state
def hooks_run(deploy: Deploy, hooks: Hooks, point: str) -> Generator:
    """
    Ensure the client's ``point`` hooks ran for this release (before or after the switch).

    + deploy: the host's Deploy settings
    + hooks: the client's Hooks
    + point: ``"before_switch"`` (runs while the release is not live yet), ``"after_switch"``
      or ``"after_rollback"`` (give ``_if=<switch op>.did_change``)

    **Example:**

    .. code:: python

        hooks.hooks_run(name="before_switch hooks", deploy=deploy, hooks=h, point="before_switch")
    """
    entries: tuple[Hook, ...] = getattr(hooks, point)
    state = deploy_state(deploy.layout, deploy.release)
    if not entries or (point == "before_switch" and current_release(state) == deploy.release):
        return
    targeted = targeted_hosts()
    mine = [h.run for h in entries if h.runs_on(host.name, targeted)]
    listed = "; ".join(h.run + h.where(targeted) for h in entries)
    here = "" if len(mine) == len(entries) else f" ({len(mine)} of them on {host.name})"
    say(f"{point} hooks in {RELEASES_DIR}/{deploy.release}{here}: {listed}")
    if not mine:
        return
    prepared = _prepared(state, deploy, hooks, mine)
    args = (point, state.root, deploy.release, deploy.deployed_by, prepared)
    yield FunctionCommand(run_hooks, args, {})


def _run_on_failure(state: State, target: Any) -> None:
    """Run `target`'s on_failure hooks once, if its release was populated in this run and the
    run did not get through; their failures are only reported."""
    run = run_context(state)
    if not run.on_failure_armed(target.name) or target.name not in run.on_failure:
        return
    deploy, entries, php = run.on_failure.pop(target.name)
    # A once hook: on the first host by name of those whose release was populated.
    armed = [h.name for h in state.inventory if run.on_failure_armed(h.name)]
    commands = [h.run for h in entries if h.runs_on(target.name, armed)]
    if not commands:
        return
    current = read_deploy_tree(target, deploy.layout, deploy.release)  # the failure path only
    previous = _previous(current, deploy.release)
    env = hook_env(current.root, deploy.release, previous, target.name, php)
    folder = release_path(current.root, deploy.release)
    for text in commands:
        ok, output = run_now(target, hook_command(folder, env, text))
        status = "ok" if ok else "failed"
        target.log(f"on_failure hook `{text}`: {status}", log_func=logger.warning)
        for line in output.stdout_lines + output.stderr_lines:
            target.log(f"  {line}", log_func=logger.warning)


def arm_on_failure(deploy: Deploy, hooks: Hooks) -> None:
    """Run the client's on_failure hooks on the current host if the run fails once its
    release is populated (see context.RunContext.on_failure_armed), before its lock goes back.
    """
    if not hooks.on_failure:
        return
    state = host.state
    run_context(state).on_failure[host.name] = (deploy, hooks.on_failure, hooks.php_binary)
    when_host_stops(state, "on_failure hooks", 10, lambda target: _run_on_failure(state, target))
