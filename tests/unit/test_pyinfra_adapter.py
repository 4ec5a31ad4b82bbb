"""The pyinfra behaviours operations/pyinfra_adapter.py relies on, checked against the installed
pyinfra: if one of these fails after an upgrade, the adapter (and only it) needs a change."""

from __future__ import annotations

import importlib
import inspect

import pytest
from pyinfra.api import Config, Inventory, State, StringCommand
from pyinfra.api.connect import connect_all
from pyinfra.api.host import Host
from pyinfra.api.state import StateStage

from operations import pyinfra_adapter as adapter


@pytest.fixture
def local_state() -> State:
    state = State(Inventory((["@local"], {})), Config())
    connect_all(state)
    return state


def test_stages_tell_preparing_from_executing(local_state):
    assert StateStage.Prepare < StateStage.Execute
    local_state.current_stage = StateStage.Prepare
    assert adapter.preparing(local_state) and not adapter.executing(local_state)
    local_state.current_stage = StateStage.Execute
    assert adapter.executing(local_state) and not adapter.preparing(local_state)


def test_the_operation_being_evaluated_is_named_on_the_host():
    assert hasattr(Host, "current_op_hash")
    source = inspect.getsource(importlib.import_module("pyinfra.api.operation"))
    assert "host.current_op_hash = op_hash" in source


def test_run_now_runs_a_command_and_returns_its_output(local_state):
    host = local_state.inventory.get_host("@local")
    ok, output = adapter.run_now(host, StringCommand("echo", "hello", ";", "echo", "oops", ">&2"))
    assert ok and output.stdout_lines == ["hello"] and output.stderr_lines == ["oops"]
    ok, _ = adapter.run_now(host, StringCommand("exit", "3"))
    assert not ok


def test_a_stopping_run_asks_the_failed_hosts_hook(local_state):
    # pyinfra asks the hook when more hosts failed than FAIL_PERCENT allows, before it raises
    assert "self.should_raise_failed_hosts(self) is False" in inspect.getsource(State.fail_hosts)
    stopped: list[State] = []
    adapter.when_run_stops(local_state, stopped.append)
    assert local_state.should_raise_failed_hosts(local_state) is True  # no CLI prompt: raise
    assert stopped == [local_state]

    answers = iter([False])  # the CLI's prompt, answered "continue"
    local_state.should_raise_failed_hosts = lambda state: next(answers)
    adapter.when_run_stops(local_state, stopped.append)
    assert local_state.should_raise_failed_hosts(local_state) is False
    assert stopped == [local_state]  # the run goes on: no host is done


def test_assign_is_one_quoted_shell_word():
    assert adapter.assign("r", "a b").get_raw_value() == "r='a b'"
    assert adapter.assign("x", "$(id)'").get_raw_value() == "x='$(id)'\"'\"''"


@pytest.mark.parametrize(
    ("raw", "value"),
    [("1234e56", 1.234e59), ("1234567", 1234567), ("true", True), ('"1234e56"', "1234e56")],
)
def test_cli_values_are_converted_as_the_cli_does(raw, value):
    assert adapter.cli_value(raw) == value


def test_the_inventory_argument_is_found_as_pyinfras_cli_parses_it():
    argv = ["pyinfra", "-y", "--data", "release=abc1234", "inventories/x.yml", "deploy.py"]
    assert adapter.cli_inventory(argv) == "inventories/x.yml"
    assert adapter.cli_inventory(["pyinfra", "--version"]) is None


def test_yes_without_dry_executes_each_operation_once_with_no_prepare_pass(
    local_state, monkeypatch
):
    # the CLI: -y means State(check_for_changes=False), and so no prepare pass and no
    # question; --dry and the --debug-* options stop once the deploy files are loaded
    from pyinfra_cli import cli as pyinfra_cli

    assert "State(check_for_changes=not yes)" in inspect.getsource(pyinfra_cli._setup_state)
    main = inspect.getsource(pyinfra_cli._main)
    assert main.index("if dry:") < main.index("_exit()", main.index("if dry:"))
    assert main.index("if dry:") < main.index("state.set_stage(StateStage.Execute)")
    assert main.index("if debug_facts or debug_operations:") < main.index("if dry:")

    import pyinfra

    monkeypatch.setattr(pyinfra, "is_cli", True)
    argv = ["pyinfra", "inventories/x.py", "deploy.py"]
    cases = [
        (True, ["-y"], False),  # no -y: the State checks for changes (prepares)
        (False, ["-y"], True),
        (False, ["--yes", "--json"], True),
        (False, ["-y", "--dry"], False),
        (False, ["-y", "--debug-operations"], False),
        (False, ["-y", "--debug-facts"], False),
        (False, [], False),  # not what the command line says: refuse to guess
    ]
    for check_for_changes, options, expected in cases:
        local_state.check_for_changes = check_for_changes
        monkeypatch.setattr(adapter.sys, "argv", [*argv[:1], *options, *argv[1:]])
        assert adapter.executes_without_prepare(local_state) is expected, options
    monkeypatch.setattr(pyinfra, "is_cli", False)  # an API run: never
    local_state.check_for_changes = False
    monkeypatch.setattr(adapter.sys, "argv", ["pyinfra", "-y", *argv[1:]])
    assert adapter.executes_without_prepare(local_state) is False


def test_hosts_load_the_deploy_files_side_by_side_in_greenlets():
    # each host's load is a greenlet of state.pool: a load waiting on a load_flag lets the
    # others run, and wakes when one of them sets it
    from gevent.pool import Pool
    from pyinfra_cli import util as pyinfra_util

    source = inspect.getsource(pyinfra_util._parallel_load_hosts)
    assert "state.pool.spawn(load_file, host)" in source
    assert "exec_file(filename)" in inspect.getsource(pyinfra_util.load_deploy_file)

    flag, order = adapter.load_flag(), []

    def waiting():
        order.append("waits")
        flag.wait(timeout=5)
        order.append("woken")

    def setting():
        order.append("sets")
        flag.set()

    pool = Pool(2)
    pool.spawn(waiting)
    pool.spawn(setting)
    pool.join(timeout=5)
    assert order == ["waits", "sets", "woken"]


def test_a_connected_host_says_so(local_state):
    assert adapter.connected(local_state.inventory.get_host("@local"))
    state = State(Inventory((["@local"], {})), Config())  # not connected yet
    assert not adapter.connected(state.inventory.get_host("@local"))


def test_the_execute_stage_is_the_one_that_acts(local_state):
    local_state.current_stage = adapter.execute_stage()
    assert adapter.executing(local_state) and not adapter.preparing(local_state)
