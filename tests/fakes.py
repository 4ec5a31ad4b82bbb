"""Stand-ins for pyinfra's State and Host, just enough to drive an operation's generator in a
unit test (see shared/notes on testing: `op._inner(...)` under ctx_state/ctx_host)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from pyinfra.api.state import StateStage

from operations.context import run_context
from operations.layout import Deploy, Layout


class FakeState:
    """A pyinfra State: the stage, callback handlers, config (a class: contexts are per object)."""

    def __init__(self, stage: StateStage = StateStage.Execute):
        self.current_stage = stage
        self.callback_handlers: list[Any] = []
        self.config = SimpleNamespace(DIFF=False)
        self.failed_hosts: set[Any] = set()

    def add_callback_handler(self, handler: Any) -> None:
        self.callback_handlers.append(handler)


class FakeHost:
    """A pyinfra Host whose every fact is `fact_state`; collects what operations log."""

    def __init__(self, fact_state: Any, stage: StateStage = StateStage.Execute, name="fake"):
        self.name = name
        self.data: dict[str, Any] = {"ssh_user": "deploy"}
        self.current_op_hash = "op"
        self.state = FakeState(stage)
        self.fact_state = fact_state
        self.logged: list[str] = []

    def get_fact(self, fact, **kwargs):
        return self.fact_state

    def log(self, message, log_func=None):
        self.logged.append(message)

    def log_styled(self, message, log_func=None, **styles):
        self.logged.append(message)

    def noop(self, message):
        self.logged.append(message)

    def forget_reads(self) -> None:
        """The next deploy_state reads the fake host again."""
        run_context(self.state).reads.pop(self.name, None)


def make_deploy(
    root: str | None = "/srv/s",
    release: str = "abcdef123456",
    source: str = "/nonexistent",
    *,
    shared_dirs: tuple[str, ...] = ("cache", "content", "storage"),
    shared_files: tuple[str, ...] = (),
    shared_sources: dict[str, str] | None = None,
) -> Deploy:
    """A Deploy made by hand for a test (a real run's comes from config.host_data)."""
    return Deploy(
        layout=Layout(root, "htdocs", tuple(shared_dirs), tuple(shared_files)),
        release=release,
        source=source,
        exclude=(),
        keep_releases=5,
        deployed_by="test@here",
        copy_mode="copy",
        shared_sources=tuple(sorted((shared_sources or {}).items())),
    )
