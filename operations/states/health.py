"""Wanted state after the switch: every host answers its health check, or all are switched back.

Two operations, both only on hosts whose ``current`` just changed (``_if=switch.did_change``):

1. ``health_checked``: an HTTP GET of the host's URL from the machine running pyinfra, retried;
   the result is kept in the run's context (context.RunContext.health).
2. ``healthy_or_rolled_back``: pyinfra runs each operation on every host before the next, so
   here every host's result is known. If any host failed, each host points ``current`` back
   at the release it replaced (by rename), logs ``health-failed`` and ``rollback``, and fails
   with a message saying what failed and that it rolled back; the run exits non-zero and the
   on_failure hooks run.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Generator

from pyinfra import host, logger
from pyinfra.api import QuoteString, StringCommand

from .. import deploy_log
from ..common import chain, preparing, say, wanted_state
from ..context import run_context
from ..facts import deploy_state
from ..layout import CURRENT_LINK, RELEASES_DIR, Deploy
from ..live import Health
from ..plan import current_release, previous_release
from .php_reload import PhpRefresh, describe, refresh_and_log
from .switch import move_current


def check_once(health: Health, url: str) -> str | None:
    """One request: None if the answer is as expected, else what was wrong."""
    request = urllib.request.Request(url, headers={"User-Agent": "atomic-deploy health check"})
    try:
        with urllib.request.urlopen(request, timeout=health.timeout) as response:  # noqa: S310
            status, body = response.status, response.read(1024 * 1024)
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read(1024 * 1024)
    except (urllib.error.URLError, OSError) as e:
        return f"GET {url}: {getattr(e, 'reason', None) or e}"
    if status != health.status:
        return f"GET {url}: status {status}, expected {health.status}"
    if health.contains and health.contains not in body.decode(errors="replace"):
        return f"GET {url}: the response does not contain {health.contains!r}"
    return None


def check(health: Health, url: str, sleep: Callable[[float], None] = time.sleep) -> str | None:
    """check_once, retried `health.retries` times `health.delay` apart; the last failure."""
    problem = None
    for attempt in range(health.retries + 1):
        if attempt:
            sleep(health.delay)
        problem = check_once(health, url)
        if problem is None:
            return None
    return f"{problem} ({health.retries + 1} attempts)"


@wanted_state
def health_checked(deploy: Deploy, health: Health) -> Generator:
    """
    Ensure this host's health check result is known (checked from the machine running pyinfra).

    + deploy: the host's Deploy settings
    + health: the client's Health settings

    Never a change; give ``_if=<switch op>.did_change``.

    **Example:**

    .. code:: python

        health.health_checked(name="health checked", deploy=deploy, health=h, _if=sw.did_change)
    """
    url = health.url_for(host.name)
    if preparing():
        if current_release(deploy_state(deploy.layout, deploy.release)) != deploy.release:
            say(f"health check after the switch: GET {url} expecting {health.status}")
        return
    problem = check(health, url)
    run_context(host.state).health[host.name] = problem
    if problem is None:
        host.log(f"health check ok: GET {url}", log_func=logger.info)
    else:
        host.log_styled(f"health check failed: {problem}", fg="red", log_func=logger.error)
    return
    yield


@wanted_state
def healthy_or_rolled_back(
    deploy: Deploy, health: Health, php: PhpRefresh | None = None
) -> Generator:
    """
    Ensure every checked host was healthy, or switch this host back to the release it replaced.

    + deploy: the host's Deploy settings
    + health: the client's Health settings
    + php: the client's after-switch step, run again for the release switched back to (its
      failure is reported; the next run retries it, as after any switch)

    **Example:**

    .. code:: python

        health.healthy_or_rolled_back(name="all hosts healthy", deploy=deploy, health=h,
                                      _if=sw.did_change)
    """
    results = run_context(host.state).health
    failed = {name: problem for name, problem in results.items() if problem}
    if preparing() or not failed:
        return
    sha = deploy.release
    state = deploy_state(deploy.layout, sha)
    summary = "; ".join(f"{name}: {problem}" for name, problem in sorted(failed.items()))
    by = deploy.deployed_by
    back = previous_release(state) if current_release(state) == sha else None
    failure = deploy_log.line(deploy_log.HEALTH_FAILED, sha, by, summary)
    steps = [deploy_log.append_command(state.root, failure)]
    if back is None:
        message = f"health check failed ({summary}); no previous release to switch back to"
    else:
        say(f"{CURRENT_LINK}: {RELEASES_DIR}/{sha} -> {RELEASES_DIR}/{back} "
            "(health check failed)")  # fmt: skip
        line = deploy_log.line(deploy_log.ROLLBACK, back, by, f"from {sha} (health check)")
        steps.append(move_current(state.root, back, line))
        if php is not None:
            say(f"php after switch: {describe(php)} for {RELEASES_DIR}/{back}")
            failed = f"atomic-deploy: php after switch-back failed for {RELEASES_DIR}/{back}"
            steps.append(StringCommand(
                "(", refresh_and_log(php, state.root, back, deploy), ")",
                "||", "echo", QuoteString(failed), ">&2",
            ))  # fmt: skip
        message = f"health check failed ({summary}); rolled back to {RELEASES_DIR}/{back}"
    yield chain(*steps)
    yield StringCommand("echo", QuoteString(f"atomic-deploy: {message}"), ">&2;", "exit", "1")
