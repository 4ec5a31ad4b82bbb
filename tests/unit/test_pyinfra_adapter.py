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
