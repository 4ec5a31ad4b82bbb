"""Test aid, run by pyinfra before the deploy file under test (tests/support/client.run_pyinfra):

    pyinfra INVENTORY tests/known_states.py deploy.py

Operations may hand on the state their commands leave instead of having the next operation
read the host again (operations/facts.py). This file checks each such state against a fresh
read of the host, right when the operation succeeds, and fails the run on any difference.
It declares no operation; it only adds a pyinfra callback handler (public API).
"""

from dataclasses import replace

from pyinfra import host
from pyinfra.api.state import BaseStateCallback

from operations.context import run_context
from operations.facts import LOG_LINES, DeployState, read_deploy_tree


class CheckKnownStates(BaseStateCallback):
    """Compare a state an operation hands on with a fresh read (before facts.py adopts it)."""

    @staticmethod
    def operation_host_success(state, host, op_hash, retry_attempt=0):
        expected = run_context(state).expected.get((host.name, op_hash))
        if expected is None:
            return
        (_stage, layout, sha), after = expected
        fresh = read_deploy_tree(host, layout, sha)
        after = replace(after, log=after.log[-LOG_LINES:])  # a read sees the log's last lines
        diff = {
            name: (getattr(after, name), getattr(fresh, name))
            for name in DeployState.__dataclass_fields__
            # the lock operations keep `lock` outside the handed-on state
            if name != "lock" and getattr(after, name) != getattr(fresh, name)
        }
        if diff:
            raise AssertionError(
                f"{host.name}: the state an operation handed on differs from the host "
                f"(handed on, read): {diff}"
            )


run = run_context(host.state)
if "check-known-states" not in run.handlers:
    run.handlers.add("check-known-states")
    host.state.add_callback_handler(CheckKnownStates())
