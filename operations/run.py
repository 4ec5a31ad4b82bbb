"""One host's part of a run: the client's settings for it, and the entry and exit every run
that changes hosts shares (deploy.py, rollback.py, restore_dump.py).

    run = HostRun.for_host()
    with run.guarded("deploy"):        # the deploy lock on every host, on_failure, the webhook
        run.before_switch(release.release_populated(...), arms_on_failure=True)
        switch.current_switched(..., held_back=run.held_back)

`guarded` is the one place that takes and gives back the deploy lock (first host first, so of
two concurrent runs exactly one goes on), arms the client's on_failure hooks and tells the
webhook how the run went; `before_switch` and `all_hosts_ready` are the all-hosts barrier:
no host switches unless every targeted host got through every operation registered with it,
whatever --fail-percent says.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pyinfra import host, logger
from pyinfra.api import State
from pyinfra.api.operation import OperationMeta

from . import dry_summary
from . import pyinfra_adapter as adapter
from .common import install_stop_signals, stop_if_interrupted
from .context import RunContext, run_context
from .database import Database
from .layout import CURRENT_LINK, NO_RELEASE, Deploy
from .live import Health, Hooks, deploy_for
from .states import hooks, lock, notify
from .states.php_reload import PhpRefresh


def setting(key: str, kind: type, *, optional: bool = False) -> Any:
    """The current host's host data `key`, as the inventory (config.host_data) built it.

    Refuses anything else: e.g. a `--data deploy=...` on the command line would replace it.
    """
    value = host.data.get(key)
    if isinstance(value, kind) or (optional and value is None):
        return value
    raise SystemExit(
        f"atomic-deploy: host data '{key}' is {value!r}, not the client file's {kind.__name__} "
        "settings: the inventory sets it, --data cannot replace it"
    )


@dataclass(frozen=True)
class HostRun:
    """The current host's settings for this run, and the run's shared context."""

    deploy: Deploy
    database: Database | None  # None: the client describes no database
    hooks: Hooks  # empty: no hooks
    health: Health | None  # None: no health check
    php: PhpRefresh | None  # None: no after-switch step
    webhook: str | None  # None: no notifications
    client_file: str
    take_over_lock: bool  # --data take_over_lock=true
    context: RunContext

    @classmethod
    def for_host(cls, release: str | None = None, *, existing: bool = False) -> HostRun:
        """From the current host's data. `existing`: the run is about a release already on the
        hosts (rollback, restore: `release` or none) rather than the one the inventory named.
        """
        install_stop_signals(host.state)
        stop_if_interrupted(host.state)  # a signal while loading the inventory or connecting
        adapter.send_packets_at_once(host)  # ~40 ms less per remote command
        deploy = setting("deploy", Deploy)
        return cls(
            deploy=deploy_for(deploy, release) if existing else deploy,
            database=setting("database", Database, optional=True),
            hooks=setting("hooks", Hooks),
            health=setting("health", Health, optional=True),
            php=setting("php", PhpRefresh, optional=True),
            webhook=setting("webhook", str, optional=True),
            client_file=host.data.get("client_file") or "",
            take_over_lock=host.data.get("take_over_lock") is True,
            context=run_context(host.state),
        )

    @contextmanager
    def guarded(self, action: str) -> Iterator[None]:
        """Declare the operations inside between taking the deploy lock on every host and
        giving it back; on_failure hooks and the webhook cover the whole run. The first
        host's lock is taken by its first read, even one declared before (a preflight check);
        under `-y` (not `--dry`) that read is made here, while the deploy file loads, and the
        other hosts' first reads take theirs (lock.take_with_first_read).

        A host that fails gives its lock back at once, after its on_failure hooks (if its
        release was populated); a run that stops does so on every host.
        """
        deploy = self.deploy
        release = "" if deploy.release == NO_RELEASE else deploy.release  # e.g. no rollback target
        if self.webhook:
            notify.arm(self.webhook, action, release, deploy.deployed_by, self.client_file)
        lock.take_with_first_read(deploy)  # each host's lock rides on its first read
        for hosts in ("first", "others"):  # concurrent runs race for the first host first
            lock.lock_held(
                name=f"deploy lock held ({hosts} host{'s' if hosts == 'others' else ''})",
                deploy=deploy, hosts=hosts, take_over=self.take_over_lock,
            )  # fmt: skip
        hooks.arm_on_failure(deploy, self.hooks)
        _tell_when_stopped_before_switch(host.state, self.context)
        dry_summary.install(host.state)
        yield
        lock.lock_released(name="deploy lock released", deploy=deploy)
        if self.webhook:  # once per run, from this machine; failures only warn
            notify.notified(
                name="webhook told", url=self.webhook, action=action, release=release,
                by=deploy.deployed_by, client=self.client_file, _run_once=True,
            )  # fmt: skip

    def before_switch(self, meta: OperationMeta, *, arms_on_failure: bool = False) -> OperationMeta:
        """Register an operation that must succeed on every host before any host switches.

        `arms_on_failure`: once it succeeded on this host, a failing run runs the host's
        on_failure hooks (the populate operation: the release they run in exists).
        """
        self.context.require_before_switch(host.name, meta)
        if arms_on_failure:
            self.context.arms_on_failure[host.name] = meta
        return meta

    @property
    def nothing_after_rollback(self) -> bool:
        """rollback.py: no step configured after its switch runs a command on the host (no
        `php` step, no after_rollback hooks), so the switch may give the deploy lock back in
        its own command (rollback.current_rolled_back, lock.give_back_with)."""
        return not self.php and not self.hooks.after_rollback

    @property
    def held_back(self) -> Callable[[], str | None]:
        """For a switch's `held_back`: why no host may switch yet (None: every targeted host
        got through every before_switch operation)."""
        state = host.state
        return lambda: self.context.held_back(state)

    @property
    def all_hosts_ready(self) -> Callable[[], bool]:
        """`_if` for a switch: every targeted host got through every before_switch operation."""
        return self.context.all_hosts_ready(host.state)


def _tell_when_stopped_before_switch(state: State, context: RunContext) -> None:
    """When failed hosts stop the run before the barrier let any host switch, say so, naming
    which host did not get through which operation."""
    if "held-back" in context.handlers:
        return
    context.handlers.add("held-back")

    def tell(state_: State) -> None:
        reason = context.held_back(state_) if context.required else None
        if reason:
            logger.warning(f"--> No host switched {CURRENT_LINK}: every host must be ready "
                           f"first, and {reason}")  # fmt: skip

    adapter.when_run_stops(state, tell)
