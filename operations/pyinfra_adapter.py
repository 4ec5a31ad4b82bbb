"""The places where atomic-deploy relies on pyinfra beyond its documented API, in one module.

Everything else uses pyinfra's public API (`@operation`, facts, `host.log`, `_if`, callback
handlers). Each function here names the pyinfra 3.10 behaviour it relies on, and
tests/unit/test_pyinfra_adapter*.py fail if pyinfra changes it.
"""

from __future__ import annotations

import atexit
import gc
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

from pyinfra.api import QuoteString, State, StringCommand
from pyinfra.api.state import StateStage
from pyinfra.context import ctx_host


def preparing(state: State) -> bool:
    """True while pyinfra prepares (computes the diff), False while it executes.

    Relies on `State.current_stage` and `StateStage.Prepare` (pyinfra/api/state.py): an
    operation's body runs once per stage without `-y`, and only its Execute run may act.
    """
    return state.current_stage == StateStage.Prepare


def execute_stage() -> StateStage:
    """The stage in which operations act (`StateStage.Execute`, see `preparing`)."""
    return StateStage.Execute


def executing(state: State) -> bool:
    """True once pyinfra has started executing operations (not in a dry run)."""
    return state.current_stage >= StateStage.Execute


def executes_without_prepare(state: State) -> bool:
    """True when this run executes each operation body once and nothing before: a CLI run
    with `-y` (no prepare pass, no question) and without `--dry`, `--debug-facts` or
    `--debug-operations` (which stop once the deploy files are loaded).

    Then what the deploy files do while loading is the start of the run itself (e.g. taking
    the deploy lock). Relies on pyinfra_cli/cli.py making `State(check_for_changes=not yes)`
    and stopping after loading for `dry`/`debug_facts`/`debug_operations`, parameters of
    its click command read from the command line as the CLI parses it.
    """
    import pyinfra

    if not pyinfra.is_cli or getattr(state, "check_for_changes", True):
        return False
    params = _cli_params(command_line())
    return bool(
        params.get("yes")
        and not any(params.get(name, True) for name in ("dry", "debug_facts", "debug_operations"))
    )


def load_flag() -> Any:
    """A flag (`set()`, `wait(timeout)`) for one host's load of the deploy file to wait until
    another host's load got somewhere (lock.read_at_load).

    Relies on pyinfra_cli/util.py `_parallel_load_hosts` loading each host's deploy file in
    its own greenlet of `state.pool` (gevent), spawned in inventory order: a load that waits
    for a remote command lets the others run. So a gevent Event blocks only the waiting host's
    load, not the process.
    """
    from gevent.event import Event

    return Event()


def connected(target: Any) -> bool:
    """The host is connected (a host that failed to connect is not, and runs nothing).

    Relies on `Host.connected` (pyinfra/api/host.py), set by `Host.connect`.
    """
    return bool(getattr(target, "connected", False))


def current_op_hash(target: Any) -> str | None:
    """The hash of the operation the host is evaluating (None outside one).

    Relies on `Host.current_op_hash`, set by pyinfra/api/operation.py around an operation's
    body: callback handlers receive the same hash, which pairs an operation body with its
    outcome (see context.RunContext.reads).
    """
    return target.current_op_hash


def send_packets_at_once(target: Any) -> bool:
    """Turn off Nagle's algorithm (TCP_NODELAY) on the host's SSH connection; True if done.

    Relies on `SSHConnector.client` (pyinfra/connectors/ssh.py), a paramiko SSHClient, which
    sets no socket options: each remote command then waits ~40 ms for the server's delayed
    ACK before its request leaves (44 ms per command on loopback here, 3 ms without Nagle).
    Does nothing for @local or a connection through a proxy command (no TCP socket of ours).
    """
    client = getattr(target.connector, "client", None)
    transport = client.get_transport() if client is not None else None
    sock = getattr(transport, "sock", None)
    if not isinstance(sock, socket.socket) or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return True


def run_now(target: Any, command: StringCommand, *, print_input: bool = False) -> tuple[bool, Any]:
    """Run `command` on the host at once, outside the operation's yielded commands.

    Relies on `Host.run_shell_command` (pyinfra/api/host.py) returning (ok, CommandOutput with
    stdout_lines/stderr_lines). Used for bookkeeping that must not count as a change (taking
    the deploy lock), for work on a host that stops (on_failure hooks, giving a lock back), and
    inside FunctionCommands (hooks, a copy-mode probe).
    """
    return target.run_shell_command(command, print_input=print_input)


def when_run_stops(state: State, action: Callable[[State], None]) -> None:
    """Call `action(state)` when pyinfra stops the run because hosts failed (FAIL_PERCENT).

    Relies on `State.should_raise_failed_hosts`, the hook pyinfra/api/operations.py asks after
    an operation that failed on a host: the CLI sets it to its "continue?" prompt (without
    `-y`); a true answer (or no hook) makes pyinfra raise and run nothing more on any host.
    """
    ask = state.should_raise_failed_hosts

    def should_raise(state_: State) -> bool:
        decision = ask(state_) if ask else True
        if decision is not False:  # the run stops here: every host is done
            action(state_)
        return decision

    state.should_raise_failed_hosts = should_raise


def count_as_failed(state: State) -> None:
    """Count the current host as failed while preparing, without stopping the preparation.

    Relies on `State.failed_hosts`, which the CLI's exit (`_exit` in pyinfra_cli/cli.py)
    reads: any failed host makes `--dry` (and every other run) exit 1. `State.fail_hosts`
    is not used: it raises at once (FAIL_PERCENT), before the other hosts are prepared.
    """
    state.failed_hosts.add(ctx_host.get())  # the Host itself, not the `pyinfra.host` proxy


def before_disconnect(state: State, action: Callable[[Any], None]) -> None:
    """Call `action(host)` for each connected host just before pyinfra disconnects from it,
    however the run ends: finished, stopped by failed hosts, an exception, a signal.

    Relies on pyinfra_cli/cli.py ending every run with `finally: disconnect_all(state)`, which
    calls `host.disconnect()` (pyinfra/api/connect.py) for every host it connected to, while
    the connection still works. The `host_disconnect` callback is no substitute: it fires once
    the connection is closed.
    """
    for target in state.inventory:
        original = target.disconnect

        def disconnect(target: Any = target, original: Callable[[], None] = original) -> None:
            try:
                action(target)
            finally:
                original()

        target.disconnect = disconnect


def initialised(state: State) -> bool:
    """True once pyinfra gave the State its inventory and config (`State.init`): only then
    can callback handlers be added. The CLI loads the inventory before that.

    Relies on `State.initialised` (pyinfra/api/state.py), which the CLI checks too.
    """
    return bool(getattr(state, "initialised", False))


def abandon_running_commands(state: State) -> None:
    """Stop waiting for the commands running on the hosts: their greenlets end (the remote
    commands themselves may finish on their own).

    Relies on the CLI running each host's part of an operation in a greenlet of `state.pool`
    (pyinfra/api/operations.py), and on `disconnect_all` spawning in that pool too: with
    every slot busy, stopping would otherwise wait for the running commands to finish.
    A killed greenlet returns GreenletExit, which pyinfra counts as success: the caller must
    make sure no further operation runs (the stop points do).
    """
    if state.pool is not None:
        state.pool.kill(block=False)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def on_stop_signals(handler: Callable[[int], None]) -> bool:
    """Call `handler(signum)` on SIGINT and SIGTERM instead of pyinfra's own handling.

    Relies on pyinfra_cli/main.py installing its SIGINT handler (print "Exiting upon user
    request!", then `sys.exit(0)`: a stopped deploy looks like success) with `signal.signal`
    before it loads the inventory and deploy files, so a handler installed from them replaces
    it; SIGTERM has none (the process dies at once). An exception the handler raises lands in
    whichever greenlet runs; gevent hands SystemExit to the main one, as for pyinfra's own.
    Returns False (nothing installed) outside the main thread, where Python forbids it.
    """
    try:
        for signum in STOP_SIGNALS:
            signal.signal(signum, lambda number, _frame: handler(number))
    except ValueError:  # not the main thread (greenlets all run in it)
        return False
    return True


def keep_fail_percent_zero_unless_set() -> bool:
    """Make the run stop as soon as a host fails (FAIL_PERCENT = 0) when nothing set it.

    config.py sets it, but pyinfra loads config.py from the working directory only: run
    from elsewhere, FAIL_PERCENT is None and the other hosts go on after one failed. Relies
    on the CLI (pyinfra_cli/cli.py) applying config.py and --fail-percent before it loads the
    inventory, and on each deploy file's `config.lock_current_state()` keeping what the
    inventory set. Returns True if it set the value.
    """
    from pyinfra import config
    from pyinfra.context import ctx_config

    if not ctx_config.isset() or config.FAIL_PERCENT is not None:
        return False
    config.FAIL_PERCENT = 0
    return True


def cli_state() -> State | None:
    """The State of the pyinfra CLI run loading us (None outside the CLI, e.g. in tests).

    Relies on `pyinfra.is_cli` and on the CLI setting `pyinfra.context.ctx_state` before it
    loads the inventory (pyinfra_cli/cli.py `_setup_state`).
    """
    import pyinfra
    from pyinfra.context import ctx_state

    return ctx_state.get() if pyinfra.is_cli else None


def op_name(state: State, meta: Any) -> str:
    """The name an operation shows in pyinfra's output, from what calling it returned.

    Relies on `OperationMeta._hash` and `State.get_op_meta(hash).names` (pyinfra/api/state.py).
    """
    return op_name_of_hash(state, meta._hash)


def host_op_hashes(target: Any) -> list[str]:
    """The hashes of the operations the deploy files declared for the host, in order.

    Relies on `Host.op_hash_order` (pyinfra/api/host.py), which `State.get_op_order` reads.
    """
    return list(target.op_hash_order)


def op_name_of_hash(state: State, op_hash: str) -> str:
    """The name of the operation with that hash (see `current_op_hash`)."""
    names = state.get_op_meta(op_hash).names
    return ", ".join(sorted(names)) or "an operation"


def assign(name: str, value: str) -> StringCommand:
    """`name='value'` as one shell word (a variable for the script that follows).

    Relies on `StringCommand(..., _separator="")` joining its parts without spaces.
    """
    return StringCommand(name + "=", QuoteString(value), _separator="")


def command_line() -> list[str]:
    """The pyinfra command line, read while the inventory loads.

    pyinfra applies `--data` overrides only after loading the inventory, and gives an
    inventory no other view of the command (which deploy file runs, `--data release=...`), so
    the inventory reads them here to refuse bad values before any host is contacted.
    """
    return list(sys.argv)


def cli_inventory(argv: list[str]) -> str | None:
    """The inventory argument of a pyinfra command line, as pyinfra's CLI parses it.

    Relies on `pyinfra_cli.cli.cli` being pyinfra's click command, whose `inventory` parameter
    is the first positional argument; `resilient_parsing` keeps click from printing usage
    errors, help or the version (pyinfra does those itself).
    """
    return _cli_params(argv).get("inventory")


def _cli_params(argv: list[str]) -> dict[str, Any]:
    """The parameters of pyinfra's click command for a command line (empty: unreadable)."""
    import click
    from pyinfra_cli.cli import cli

    try:
        ctx = cli.make_context("pyinfra", list(argv[1:]), resilient_parsing=True)
    except click.ClickException:
        return {}
    return dict(ctx.params)


def cli_value(raw: str) -> Any:
    """What pyinfra makes of a raw `--data key=value` value (bool, number, JSON, else text).

    Relies on `pyinfra_cli.util.parse_cli_arg`, which the CLI applies to each --data value.
    """
    from pyinfra_cli.util import parse_cli_arg

    return parse_cli_arg(raw)


def skip_final_collection() -> None:
    """Skip CPython's last garbage collection at exit (~0.25 s of a short pyinfra run).

    A pyinfra run is one short-lived process; freezing its objects at exit spares the final
    walk over everything pyinfra and its imports made. Exit handlers still run.
    """
    atexit.register(gc.freeze)
