"""The pyinfra behaviours the adapter relies on to stop a run cleanly (signals, disconnect,
fail percent, operation names), checked against the installed pyinfra."""

from __future__ import annotations

import inspect
import os
import signal

import pytest
from pyinfra.api import Config, Inventory, State
from pyinfra.api.connect import connect_all
from pyinfra.api.operation import add_op
from pyinfra.context import ctx_config
from pyinfra.operations import server
from pyinfra_cli import cli as pyinfra_cli
from pyinfra_cli import main as pyinfra_main

from operations import common
from operations import pyinfra_adapter as adapter
from operations.context import run_context


@pytest.fixture
def local_state() -> State:
    state = State(Inventory((["@local"], {})), Config())
    connect_all(state)
    return state


def test_every_cli_run_ends_by_disconnecting_each_host(local_state):
    source = inspect.getsource(pyinfra_cli.cli.callback)
    assert source.index("finally:") < source.index("disconnect_all(state)")
    calls: list[str] = []
    target = local_state.inventory.get_host("@local")
    original = target.disconnect
    target.disconnect = lambda: (calls.append("disconnect"), original())
    adapter.before_disconnect(local_state, lambda host: calls.append(f"action {host.name}"))
    target.disconnect()
    assert calls == ["action @local", "disconnect"]


def test_a_failing_action_still_disconnects(local_state):
    target = local_state.inventory.get_host("@local")
    adapter.before_disconnect(local_state, lambda host: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        target.disconnect()
    assert not target.connected


def test_our_signal_handlers_replace_the_clis():
    # pyinfra's own: print "Exiting upon user request!" and exit 0; no SIGTERM handler
    source = inspect.getsource(pyinfra_main.main)
    assert "sys.exit(0)" in source and "signal.signal(signal.SIGINT" in source
    assert "SIGTERM" not in source
    before = {s: signal.getsignal(s) for s in adapter.STOP_SIGNALS}
    seen: list[int] = []
    try:
        assert adapter.on_stop_signals(seen.append)
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
    assert seen == [signal.SIGTERM, signal.SIGINT]


def test_the_inventory_may_set_the_fail_percent_the_deploy_files_keep():
    source = inspect.getsource(pyinfra_cli._main)
    assert source.index("_set_config(") < source.index("make_inventory(")
    prepare = inspect.getsource(pyinfra_cli._prepare_deploy_operations)
    assert prepare.index("lock_current_state()") < prepare.index("load_deploy_file(")
    config = Config()
    with ctx_config.use(config):
        assert config.FAIL_PERCENT is None  # no config.py, no --fail-percent
        assert adapter.keep_fail_percent_zero_unless_set()
        assert config.FAIL_PERCENT == 0
    config = Config(FAIL_PERCENT=50)
    with ctx_config.use(config):
        assert not adapter.keep_fail_percent_zero_unless_set()  # the user chose
        assert config.FAIL_PERCENT == 50


def test_an_operation_is_named_as_pyinfra_shows_it(local_state):
    metas = add_op(local_state, server.shell, commands=["true"], name="release populated")
    (meta,) = metas.values()
    assert adapter.op_name(local_state, meta) == "release populated"


def test_the_hosts_operations_are_listed_in_order(local_state):
    first = add_op(local_state, server.shell, commands=["true"], name="one")
    second = add_op(local_state, server.shell, commands=["true"], name="two")
    target = local_state.inventory.get_host("@local")
    hashes = adapter.host_op_hashes(target)
    assert [adapter.op_name_of_hash(local_state, h) for h in hashes] == ["one", "two"]
    assert hashes == [first[target]._hash, second[target]._hash]


def test_callback_handlers_wait_for_the_state_to_be_initialised(local_state):
    assert adapter.initialised(local_state)
    assert not adapter.initialised(State())  # as the CLI's, while it loads the inventory
    assert "self.callback_handlers" in inspect.getsource(State.init)


def test_a_signal_stops_the_run_between_operations_with_128_plus_its_number(local_state):
    common.stop_if_interrupted(local_state)  # not interrupted: nothing happens
    run_context(local_state).interrupted = signal.SIGTERM
    with pytest.raises(SystemExit) as stopped:
        common.stop_if_interrupted(local_state)
    assert stopped.value.code == 143


def test_a_stop_action_failing_on_one_host_does_not_keep_the_others(local_state):
    done: list[str] = []

    def cut(target):
        raise OSError("Socket is closed")

    common.when_host_stops(local_state, "give back the lock", 100, lambda t: done.append(t.name))
    common.when_host_stops(local_state, "run hooks", 10, cut)
    common._stopped(local_state, local_state.inventory.get_host("@local"))
    assert done == ["@local"]
