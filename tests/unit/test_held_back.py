"""The all-hosts barrier in words: which host did not get through which operation."""

from __future__ import annotations

from types import SimpleNamespace

from operations.context import RunContext


class _Meta:
    def __init__(self, op_hash: str, outcome: bool | None) -> None:
        self._hash, self.outcome = op_hash, outcome  # None: not run yet

    def is_complete(self) -> bool:
        return self.outcome is not None

    def did_succeed(self) -> bool:
        return bool(self.outcome)


def _state(*names: str, limit: tuple[str, ...] = ()) -> SimpleNamespace:
    ops = {"p": "release b populated", "h": "before_switch hooks"}
    return SimpleNamespace(
        inventory=[SimpleNamespace(name=n) for n in names],
        is_host_in_limit=lambda h: not limit or h.name in limit,
        get_op_meta=lambda op_hash: SimpleNamespace(names={ops[op_hash]}),
    )


def test_every_host_through_every_operation_holds_nothing_back():
    run = RunContext()
    for name in ("web1", "web2"):
        run.required[name] = [_Meta("p", True), _Meta("h", True)]
    assert run.held_back(_state("web1", "web2")) is None


def test_a_failed_host_is_named_with_its_operation_not_the_ones_still_waiting():
    run = RunContext()
    run.required["web1"] = [_Meta("p", True), _Meta("h", None)]
    run.required["web2"] = [_Meta("p", False), _Meta("h", None)]
    assert run.held_back(_state("web1", "web2")) == 'web2 failed at "release b populated"'


def test_without_a_failure_the_waiting_hosts_are_named():
    run = RunContext()
    run.required["web1"] = [_Meta("p", True), _Meta("h", None)]
    assert run.held_back(_state("web1", "web2")) == (
        'web1 has not run "before_switch hooks"; web2 did not get that far'
    )


def test_hosts_outside_the_limit_do_not_count():
    run = RunContext()
    run.required["web1"] = [_Meta("p", True)]
    assert run.held_back(_state("web1", "web2", limit=("web1",))) is None
