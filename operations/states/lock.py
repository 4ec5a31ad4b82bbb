"""Wanted state: this run holds the client's deploy lock on every host (and gives it back).

The lock is a directory, `<root>/.atomic-deploy/lock` (mkdir is atomic), with an owner file
naming who holds it: user and machine that ran pyinfra, pid, start time, release, and a
token unique to the run. Two deploys started at once race for the lock on the first host
(by name) before any other; the loser stops there, naming the holder.

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
from collections.abc import Generator
from typing import Any

from pyinfra import host, logger
from pyinfra.api import State, StringCommand

from ..common import preparing, refuse, say, wanted_state, when_host_stops
from ..context import RunContext, run_context
from ..facts import LOCK_DIR, DeployState, deploy_state, fold_lock_into_read
from ..layout import META_DIR, Deploy
from ..pyinfra_adapter import run_now
from ..shell import script

STALE_AFTER = 3600  # seconds: a lock older than this is stale whoever holds it


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


def _install_give_back(state: State) -> None:
    """A host that runs nothing more (failed, or the run stopped) gives its lock back at once,
    after its on_failure hooks (see common.when_host_stops)."""
    run = run_context(state)
    when_host_stops(state, "give back the deploy lock", 100, lambda t: _give_back(run, t))


def _first_host() -> str:
    """The first targeted host by name: where concurrent deploys race for the lock."""
    state = host.state
    return min(h.name for h in state.inventory if state.is_host_in_limit(h))


def take_with_first_read(deploy: Deploy) -> None:
    """On the first host, let the execute phase's first read of the deploy root take the lock.

    Saves one remote command per run (a converged rerun costs two: read + lock, give back).
    Call it from the deploy file before the first operation. It changes nothing on a host the
    deploy would refuse or on a root never deployed to (there the lock is taken by its own
    command, after preflight); `lock_held` then finds the lock already ours. Of two concurrent
    deploys exactly one gets the first host's lock, as before: mkdir is atomic.
    """
    run = run_context(host.state)
    if host.name != _first_host() or host.name in run.held:
        return

    def taken(state: DeployState) -> None:
        if state.lock and state.lock.get("token") == run.token:
            run.held[host.name] = state.root
            _install_give_back(host.state)
            host.log(f"deploy lock taken with the first read ({state.root}/{LOCK_DIR})",
                     log_func=logger.debug)  # fmt: skip

    fold_lock_into_read(_owner(run, deploy), taken)


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
