"""Small pieces the operations share: telling the user, refusing, and shell command shapes."""

from __future__ import annotations

import functools
import posixpath
import signal
import sys
from collections.abc import Callable, Generator, Iterator
from typing import Any

from pyinfra import host, logger
from pyinfra.api import QuoteString, StringCommand, operation
from pyinfra.api.state import BaseStateCallback, State

from . import pyinfra_adapter as adapter
from .context import run_context
from .pyinfra_adapter import current_op_hash


def wanted_state(func: Callable[..., Generator]) -> Callable:
    """`@operation()` that also keeps the host's cached DeployState honest.

    When the operation yields a command the host is about to change, so the cache is dropped;
    when it yields nothing, following operations may reuse what it read. An operation that
    knows exactly what its commands leave behind may `return` that DeployState (derived from
    the one it read): once its commands succeed, following operations reuse it instead of
    reading the host again.
    """

    @functools.wraps(func)
    def tracked(*args, **kwargs) -> Generator:
        run = run_context(host.state)
        if preparing() and host.name in run.refused:
            return  # the host refused: it stops there, nothing after it is prepared
        changed = False
        read = None
        commands = func(*args, **kwargs)
        while True:
            try:
                command = next(commands)
            except StopIteration as done:
                after = done.value
                break
            if not changed and not preparing():
                read = run.reads.pop(host.name, None)
            if not changed and preparing():  # for the dry run's summary; pyinfra stops
                op_hash = current_op_hash(host)  # preparing at the first command
                if op_hash:
                    run.dry_changes.setdefault(host.name, []).append(op_hash)
            changed = True
            yield command
        op_hash = current_op_hash(host)
        if not op_hash:
            return
        if not changed:
            run.quiet.add((host.name, op_hash))
        elif after is not None and read is not None:
            run.expected[(host.name, op_hash)] = (read[0], after)

    return operation()(tracked)


def preparing() -> bool:
    """True while pyinfra prepares (computes the diff), False while it executes."""
    return adapter.preparing(host.state)


def progress_interval() -> int:
    """Seconds between progress lines (upload, copy): 1 in a terminal, 10 in a log (CI)."""
    return 1 if sys.stderr.isatty() else 10


def say(message: str) -> None:
    """Tell the user, per host, a change this operation makes (shown by --dry too)."""
    host.log(message, log_func=logger.info)


def refuse(message: str) -> Iterator[StringCommand]:
    """Stop this host with `message`, before anything changes.

    While preparing, the host says `message` as one error line and is counted as failed, so
    a dry run exits non-zero; its following operations are not prepared (`wanted_state`), and
    the other hosts still say whether they would stop too. (Raising here would end the run
    at the first host, shown as pyinfra's "Operation error in <file> line <n>".) Executing
    (`-y` skips preparing; after the prompt the checks run again), a failing command fails
    this host; FAIL_PERCENT = 0 then stops the others, and the barrier keeps every host from
    switching.
    """
    if preparing():
        run_context(host.state).dry_stops[host.name] = message  # for the dry run's summary
        host.log_styled(message, fg="red", log_func=logger.error)
        run_context(host.state).refused.add(host.name)
        adapter.count_as_failed(host.state)
        return
    # pyinfra prints a failed command's output, prefixed by the host: that is the message.
    yield StringCommand("echo", QuoteString(message), ">&2;", "exit", "1")


def would_stop(message: str) -> None:
    """While preparing: say this host would stop the run (without stopping the dry run, so
    every host says it); the dry run's summary names it."""
    run_context(host.state).dry_stops[host.name] = message
    say(f"the deploy would stop here: {message}")


def atomic_link(path: str, target: str) -> StringCommand:
    """Point symlink `path` at `target` by rename(2): it is never missing, not even briefly.

    The new link is made under a temporary name in the same folder (same file system), then
    renamed over `path`. `mv -T` refuses to replace a directory, which is what we want.
    """
    folder, name = posixpath.split(path)
    tmp = posixpath.join(folder, temp_link_name(name))
    return StringCommand(
        "rm", "-f", QuoteString(tmp),
        "&&", "ln", "-s", QuoteString(target), QuoteString(tmp),
        "&&", "mv", "-Tf", QuoteString(tmp), QuoteString(path),
    )  # fmt: skip


TEMP_LINK_SUFFIX = ".atomic-deploy-tmp"


def temp_link_name(name: str) -> str:
    """The temporary name `atomic_link` gives the new link to `name` before the rename."""
    return f".{name}{TEMP_LINK_SUFFIX}"


def chain(*commands: StringCommand) -> StringCommand:
    """One remote command running `commands` in order, stopping at the first failure."""
    bits: list[object] = []
    for command in commands:
        if bits:
            bits.append("&&")
        bits.extend(["{", command, ";", "}"])
    return StringCommand(*bits)


def copy_contents(src: str, dest: str) -> StringCommand:
    """Copy what folder `src` holds into the existing folder `dest`, keeping attributes.

    Unlike `cp -a src/. dest`, this leaves `dest`'s own mode and owner alone.
    """
    return StringCommand(
        "find", QuoteString(src), "-mindepth", "1", "-maxdepth", "1",
        "-exec", "cp", "-a", "-t", QuoteString(dest), "{}", "+",
    )  # fmt: skip


class _HostStopped(BaseStateCallback):
    @staticmethod
    def operation_host_error(state: State, host, op_hash, retry_attempt=0, max_retries=0):
        _stopped(state, host)


class _StopPoints(BaseStateCallback):
    """Where a run asked to stop by a signal stops, besides HostRun.for_host (the deploy file,
    before any operation): between two operations (the main greenlet, no command in flight)."""

    @staticmethod
    def operation_start(state: State, op_hash) -> None:
        stop_if_interrupted(state)

    @staticmethod
    def operation_end(state: State, op_hash) -> None:
        stop_if_interrupted(state)


def _stopped(state: State, target: Any) -> None:
    on_stop = run_context(state).on_stop
    for key in sorted(on_stop):
        try:
            on_stop[key](target)
        except Exception as e:  # e.g. its connection was cut: go on with the other hosts
            target.log_styled(f"could not {key[1]}: {e}", fg="yellow", log_func=logger.warning)


def when_host_stops(state: State, name: str, order: int, action: Callable[[Any], None]) -> None:
    """Run `action(host)` for a host that will run nothing more: as soon as one of its
    operations fails, for every host when pyinfra stops the run because hosts failed
    (FAIL_PERCENT), and for every host still connected when the run ends in any other way
    (Ctrl-C or SIGTERM, a cut connection, an exception). Actions run by `order` (e.g.
    on_failure hooks before the lock goes back); registering `name` again replaces it.
    `action` must be safe to call twice, and do nothing for a host that got through. An
    action that fails on one host (its connection is gone) is reported; the others still run.
    """
    run = run_context(state)
    run.on_stop[(order, name)] = action
    if "host-stopped" in run.handlers:
        return
    run.handlers.add("host-stopped")
    state.add_callback_handler(_HostStopped())
    install_stop_signals(state)

    def everyone(state_: State) -> None:
        for target in list(state_.inventory):
            _stopped(state_, target)

    adapter.when_run_stops(state, everyone)
    adapter.before_disconnect(state, lambda target: _stopped(state, target))


def cli_run_rules() -> None:
    """What every pyinfra CLI run of ours needs, whatever its working directory (config.py is
    loaded only from there): a failing host stops the run (FAIL_PERCENT = 0, unless
    --fail-percent says otherwise) and Ctrl-C or SIGTERM exit non-zero. Called by the
    inventory, which pyinfra loads before connecting to any host.
    """
    state = adapter.cli_state()
    if state is None:
        return
    adapter.keep_fail_percent_zero_unless_set()
    install_stop_signals(state)


def install_stop_signals(state: State) -> None:
    """Ctrl-C (SIGINT) and SIGTERM stop the run with a non-zero exit code (128 + signal).

    While the run holds deploy locks, the running operation first finishes on every host;
    then nothing more runs, and every host runs its when_host_stops actions (on_failure
    hooks, the lock given back) before pyinfra disconnects. A second signal stops at once:
    pyinfra no longer waits for the running commands (they may still finish on the hosts),
    and the actions still run before the disconnect.
    """
    run = run_context(state)
    if "stop-signals" not in run.handlers:
        if adapter.on_stop_signals(lambda signum: _on_signal(state, signum)):
            run.handlers.add("stop-signals")
    # Callback handlers can be added once pyinfra initialised the State (after the inventory).
    if "stop-signals" in run.handlers and "stop-points" not in run.handlers and (
        adapter.initialised(state)
    ):
        run.handlers.add("stop-points")
        state.add_callback_handler(_StopPoints())


def _on_signal(state: State, signum: int) -> None:
    run = run_context(state)
    name = signal.Signals(signum).name
    first = not run.interrupted
    run.interrupted = run.interrupted or signum  # the stop points stop the run, whatever else
    if first and run.held and adapter.executing(state):
        logger.warning(
            f"--> {name}: stopping once the running operation finishes on every host; the "
            "deploy locks are then given back (send it again to stop at once)"
        )
        return
    # Nothing held (or a second signal): stop at once. Should the exception get lost (it is
    # raised wherever the process was, e.g. inside gevent), the next stop point stops the run.
    logger.warning(f"--> {name}: stopping now")
    if not first and adapter.executing(state):
        adapter.abandon_running_commands(state)
    raise SystemExit(128 + signum)


def stop_if_interrupted(state: State) -> None:
    """Stop the run (exit 128 + signal) if a signal asked it to stop."""
    signum = run_context(state).interrupted
    if signum:
        name = signal.Signals(signum).name
        logger.warning(f"--> {name}: stopping; nothing more runs")
        raise SystemExit(128 + signum)
