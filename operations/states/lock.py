"""Wanted state: this run holds the client's deploy lock on every host (and gives it back).

The lock is a directory, `<root>/.atomic-deploy/lock` (mkdir is atomic), with an owner file
naming who holds it: user and machine that ran pyinfra, pid, start time, release, and a
token unique to the run. Two deploys started at once race for the lock on the first host
(by name) before any other; the loser stops there, naming the holder. Each host's lock is
taken by its first read of the deploy root where it can be (one remote command instead of
two): under `-y` the first host's read is made while the deploy file loads, so the other
hosts' first reads may take theirs (see `read_at_load`, `take_with_first_read`); a switch
with nothing after it may give the lock back in its own command (`give_back_with`).

Taking and giving back the lock is bookkeeping, not a change to the site, so it does not
show as a change: a converged rerun still reports "No change" everywhere. A run that fails,
is stopped (Ctrl-C, SIGTERM) or loses one host's connection gives back every lock it still
can (see common.when_host_stops); only a run killed outright (SIGKILL) or a host that cannot
be reached leaves its lock, which a later run detects as stale and takes over only when
asked to (`--data take_over_lock=true`).
"""

from __future__ import annotations

import getpass
import os
import posixpath
import socket
import time
from collections.abc import Callable, Generator
from dataclasses import replace
from typing import Any

from pyinfra import host, logger
from pyinfra.api import State, StringCommand
from pyinfra.api.state import BaseStateCallback

from ..common import chain, preparing, refuse, say, wanted_state, when_host_stops
from ..context import RunContext, run_context
from ..facts import (
    LOCK_DIR,
    DeployState,
    LockFold,
    deploy_state,
    fold_lock_into_read,
    read_while_loading,
)
from ..layout import META_DIR, Deploy
from ..pyinfra_adapter import (
    connected,
    current_op_hash,
    executes_without_prepare,
    load_flag,
    run_now,
)
from ..shell import script

STALE_AFTER = 3600  # seconds: a lock older than this is stale whoever holds it
# seconds another host's read at load waits for the first host's (then it reads without the lock)
FIRST_READ_WAIT = 60


def _owner(run: RunContext, deploy: Deploy) -> str:
    started = int(run.started)
    fields = {
        "token": run.token,
        "user": getpass.getuser(),
        "host": run.controller,
        "pid": str(os.getpid()),
        "started": str(started),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "release": deploy.release,
    }
    return "".join(f"{k}={v.replace(chr(10), ' ')}\n" for k, v in fields.items())


def describe(lock: dict[str, str]) -> str:
    """Who holds a lock, in words."""
    if not lock.get("token"):
        return "an unknown deploy (the lock has no owner file)"
    return (
        f"{lock.get('user', '?')}@{lock.get('host', '?')} (pid {lock.get('pid', '?')}, "
        f"since {lock.get('started_at', '?')}, release {lock.get('release', '?')})"
    )


def stale_reason(lock: dict[str, str], now: float | None = None) -> str | None:
    """Why a lock held by someone else is stale, or None if it may be a live deploy."""
    if not lock.get("token"):
        return "it has no owner file (its deploy was killed while taking it)"
    controller = socket.gethostname()
    if lock.get("host") == controller and lock.get("pid", "").isdigit():
        try:
            os.kill(int(lock["pid"]), 0)
        except ProcessLookupError:
            return f"its process {lock['pid']} on {controller} is gone"
        except PermissionError:
            pass  # alive, someone else's
    started = lock.get("started", "")
    if started.isdigit() and (now or time.time()) - int(started) > STALE_AFTER:
        return f"it is older than {STALE_AFTER // 60} minutes"
    return None


def _lock_command(root: str, action: str, token: str, owner: str = "") -> StringCommand:
    """sh/lock.sh: `action` take, take-over (a lock carrying `token`) or give-back."""
    values = {
        "meta": posixpath.join(root, META_DIR),
        "lockdir": posixpath.join(root, LOCK_DIR),
        "token": token,
        "owner": owner,
    }
    return script("lock.sh", values, [action])


def _acquire(root: str, owner: str, replace_token: str | None) -> StringCommand:
    """mkdir the lock (after removing a stale one only if it still has that token)."""
    if replace_token is None:
        return _lock_command(root, "take", "", owner)
    return _lock_command(root, "take-over", replace_token, owner)


def _release_command(root: str, token: str) -> StringCommand:
    """Remove the lock only if the run with `token` holds it (never someone else's)."""
    return _lock_command(root, "give-back", token)


def _give_back(run: RunContext, target: Any) -> None:
    root = run.held.pop(target.name, None)
    if root is not None:
        run_now(target, _release_command(root, run.token))


def give_back_with(command: StringCommand) -> StringCommand:
    """`command`, then giving the host's deploy lock back, as one remote command (one round
    trip less): for the last command a run makes on a host. The give-back runs only if
    `command` succeeded, and the lock counts as ours until the operation succeeded: if it
    fails, the host gives it back through when_host_stops, so exactly once either way.
    """
    state = host.state
    run = run_context(state)
    root = run.held.get(host.name)
    op_hash = current_op_hash(host)
    if preparing() or root is None or op_hash is None:
        return command
    if "given-back-with" not in run.handlers:
        run.handlers.add("given-back-with")
        state.add_callback_handler(_GivenBackWith())
    run.given_back_with.add((host.name, op_hash))
    return chain(command, _release_command(root, run.token))


class _GivenBackWith(BaseStateCallback):
    """An operation whose command gave the lock back succeeded: the lock is no longer ours."""

    @staticmethod
    def operation_host_success(state: State, host, op_hash, retry_attempt=0):
        run = run_context(state)
        if (host.name, op_hash) in run.given_back_with:
            run.given_back_with.discard((host.name, op_hash))
            run.held.pop(host.name, None)


def _install_give_back(state: State) -> None:
    """A host that runs nothing more (failed, or the run stopped) gives its lock back at once,
    after its on_failure hooks (see common.when_host_stops)."""
    run = run_context(state)
    when_host_stops(state, "give back the deploy lock", 100, lambda t: _give_back(run, t))


def _first_host() -> str:
    """The first targeted host by name: where concurrent deploys race for the lock."""
    state = host.state
    return min(h.name for h in state.inventory if state.is_host_in_limit(h))


def _fold(
    run: RunContext, deploy: Deploy, target: Any, ready: Callable[[], bool] | None = None
) -> LockFold:
    """A read of `target` (a pyinfra Host) that takes its deploy lock too (sh/take_lock.sh)."""

    def taken(state: DeployState) -> bool:
        if not (state.lock and state.lock.get("token") == run.token):
            return False  # not taken: lock_held takes it, or refuses naming the holder
        run.held[target.name] = state.root
        _install_give_back(target.state)
        target.log(f"deploy lock taken with the read ({state.root}/{LOCK_DIR})",
                   log_func=logger.debug)  # fmt: skip
        return True

    return LockFold(_owner(run, deploy), taken, ready or (lambda: True))


def read_at_load(deploy: Deploy, sha: str) -> DeployState:
    """The current host's deploy root, read now, while the deploy file loads.

    In a run that executes without a prepare pass (`-y`, not `--dry`), the read also takes
    the host's deploy lock when it may: on the first host by name, and on another host once
    the first host's lock is ours (concurrent runs race for the first host first). pyinfra
    loads the hosts side by side in no set order, so the first host's read is made by
    whichever host's load comes here first (`_first_host_read_at_load`); the others wait for
    it. A read that took the lock serves the execute phase, and the lock goes back however
    the run ends (a failure, a signal or a stop while loading included: when_host_stops).
    Otherwise it is a plain read, and the execute phase reads again.
    """
    state = host.state
    run = run_context(state)
    run.read_at_load.add(host.name)
    if not executes_without_prepare(state):
        return read_while_loading(host, deploy.layout, sha, None)
    first = _first_host()
    read = _first_host_read_at_load(run, deploy, sha)  # maybe made by another host's load
    if host.name == first and read is not None:
        return read
    may_lock = host.name == first or first in run.held  # else: execute reads again
    fold = _fold(run, deploy, host) if may_lock and host.name not in run.held else None
    return read_while_loading(host, deploy.layout, sha, fold)


def _first_host_read_at_load(run: RunContext, deploy: Deploy, sha: str) -> DeployState | None:
    """The first host's read at load, taking its lock (made once per run, by the first load
    to ask; the loads asking meanwhile wait for it). None: the first host is not connected,
    or its read failed."""
    state = host.state
    if run.first_read_done is None:
        run.first_read_done = done = load_flag()
        try:
            target = state.inventory.get_host(_first_host())
            settings = target.data.get("deploy")
            if connected(target) and isinstance(settings, Deploy):
                settings = replace(settings, release=deploy.release)  # this run's, as the owner
                run.first_read = read_while_loading(
                    target, settings.layout, sha, _fold(run, settings, target)
                )
        finally:
            done.set()
    run.first_read_done.wait(timeout=FIRST_READ_WAIT)
    return run.first_read


def take_with_first_read(deploy: Deploy) -> None:
    """Let the current host's first read take its deploy lock too: one command instead of
    two. Call it from the deploy file before the first operation.

    - The first host by name: under `-y` (not `--dry`) the read is made now, while the deploy
      file loads, and so the lock is ours before the execute phase starts (`read_at_load`);
      otherwise its first read of the execute phase takes it.
    - The other hosts, under `-y` only: their first read of the execute phase, provided the
      first host's lock is ours by then (always, once the read at load took it).

    It changes nothing on a host the deploy would refuse or on a root never deployed to
    (take_lock.sh: there the lock is taken by its own command, after preflight); `lock_held`
    then finds the lock already ours, or refuses naming its holder. Of two concurrent runs
    exactly one gets the first host's lock, as before: mkdir is atomic.
    """
    run = run_context(host.state)
    if host.name in run.held:
        return
    first = _first_host()
    early = executes_without_prepare(host.state)
    if host.name == first:
        if early and host.name not in run.read_at_load:
            read_at_load(deploy, deploy.release)
            if host.name in run.held:
                return
        fold_lock_into_read(_fold(run, deploy, host))
    elif early:
        fold_lock_into_read(_fold(run, deploy, host, ready=lambda: first in run.held))


@wanted_state
def lock_held(deploy: Deploy, hosts: str = "all", take_over: bool = False) -> Generator:
    """
    Ensure this run holds the deploy lock of the host.

    + deploy: the host's Deploy settings
    + hosts: ``"first"`` (only the first host by name), ``"others"`` or ``"all"``
    + take_over: take over a stale lock (owner process gone, or older than an hour)

    Refuses, naming the holder, when another deploy holds the lock; a stale one is taken over
    only with ``take_over``. Never shows as a change (see the module docstring).

    **Example:**

    .. code:: python

        lock.lock_held(name="deploy lock (first host)", deploy=deploy, hosts="first")
        lock.lock_held(name="deploy lock (other hosts)", deploy=deploy, hosts="others")
    """
    is_first = host.name == _first_host()
    if (hosts == "first" and not is_first) or (hosts == "others" and is_first):
        return
    run = run_context(host.state)
    state = deploy_state(deploy.layout, None)
    lock = state.lock
    replace = None
    if lock is not None and lock.get("token") != run.token:
        reason = stale_reason(lock)
        if not (take_over and reason):
            hint = (
                f"; it looks stale ({reason}): rerun with --data take_over_lock=true to take "
                "it over"
                if reason
                else "; wait for it to finish"
            )
            yield from refuse(f"another deploy holds the lock: {describe(lock)}{hint}")
            return
        say(f"taking over the lock of {describe(lock)}: {reason}")
        replace = lock.get("token", "")
    if preparing() or host.name in run.held:
        return
    _install_give_back(host.state)
    # Taken here, not yielded: holding the lock is bookkeeping, not a change to show (see the
    # module docstring). The cached DeployState keeps its old `lock` field: only this op reads
    # it, via run.held.
    ok, output = run_now(host, _acquire(state.root, _owner(run, deploy), replace))
    if not ok:  # another deploy took it between our read and our mkdir
        holder = dict(line.partition("=")[::2] for line in output.stdout_lines if "=" in line)
        yield from refuse(f"another deploy holds the lock: {describe(holder)}; wait for it")
        return
    run.held[host.name] = state.root
    host.log(f"deploy lock taken ({posixpath.join(state.root, LOCK_DIR)})", log_func=logger.debug)


@wanted_state
def lock_released(deploy: Deploy) -> Generator:
    """
    Ensure this run no longer holds the deploy lock of the host (it never removes another's).

    + deploy: the host's Deploy settings

    **Example:**

    .. code:: python

        lock.lock_released(name="deploy lock released", deploy=deploy)
    """
    if not preparing():
        run = run_context(host.state)
        run.finished.add(host.name)  # got through: no on_failure hooks from here on
        _give_back(run, host)
    return
    yield  # a generator that yields nothing: giving the lock back is not a change
