"""Notifications: one JSON POST to the client's webhook per deploy, rollback or restore run.

Sent from the machine running pyinfra, once per run (not per host), after a real run: by the
final operation (``notified``, ``_run_once=True``) when the run got there, else when the
process exits (the run failed). A webhook that fails or is slow (5 s timeout) only warns: the
deploy's outcome does not depend on it. ``--dry`` sends nothing.

The message: ``{"action", "release", "hosts", "failed_hosts", "outcome", "duration_seconds",
"by", "client", "changes", "text"}``; outcome is ``success`` or ``failure``; ``changes`` per
host: the live release before, the commits and file counts (operations/pending.py); ``text``
a one-paragraph summary, so Slack, Mattermost and Teams incoming webhooks take it as it is.
"""

from __future__ import annotations

import atexit
import json
import time
import urllib.error
import urllib.request
from collections.abc import Generator
from typing import Any

from pyinfra import host, logger
from pyinfra.api import State

from ..common import preparing, wanted_state
from ..context import run_context
from ..pending import summary_text
from ..pyinfra_adapter import executing

TIMEOUT = 5


def message(action: str, release: str, state: State, by: str, client: str) -> dict[str, Any]:
    """The JSON body for this run, from pyinfra's view of which hosts failed."""
    targeted = sorted(h.name for h in state.inventory if state.is_host_in_limit(h))
    failed = sorted(h.name for h in state.failed_hosts)
    run = run_context(state)
    body: dict[str, Any] = {
        "action": action,
        "release": release,
        "hosts": targeted,
        "failed_hosts": failed,
        "outcome": "failure" if failed else "success",
        "duration_seconds": round(time.monotonic() - run.started_monotonic, 1),
        "by": by,
        "client": client,
    }
    known = {name: run.pending[name] for name in targeted if name in run.pending}
    body["changes"] = {name: changes.as_json() for name, changes in known.items()}
    # Slack, Mattermost and Teams incoming webhooks show (and require) `text`.
    body["text"] = summary_text(body, list(known.values()))
    return body


def post(url: str, body: dict[str, Any], timeout: float = TIMEOUT) -> str | None:
    """POST `body` as JSON; None on a 2xx answer, else what went wrong."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "atomic-deploy"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            if 200 <= response.status < 300:
                return None
            return f"status {response.status}"
    except urllib.error.HTTPError as e:
        return f"status {e.code}"
    except Exception as e:  # noqa: BLE001 - any failure of the webhook only warns
        return str(getattr(e, "reason", None) or e)


def send_once(state: State, url: str, body: dict[str, Any]) -> None:
    """Send `body` unless this run already told the webhook."""
    run = run_context(state)
    if run.notified:
        return
    run.notified = True
    problem = post(url, body)
    if problem:
        logger.warning(f"notify: the webhook {url} failed ({problem}); the run is not affected")
    else:
        logger.info(f"notify: told {url} ({body['action']} {body['outcome']})")


def arm(url: str, action: str, release: str, by: str, client: str) -> None:
    """Send the message when the process ends, if the final operation did not (the run failed).

    An exit hook covers every way a real run can fail (pyinfra stops after failed hosts, or
    every host failed); a dry run never reaches the execute stage and sends nothing.
    """
    state = host.state
    run = run_context(state)
    if "notify-at-exit" in run.handlers:
        return
    run.handlers.add("notify-at-exit")

    def at_exit() -> None:
        if executing(state):
            send_once(state, url, message(action, release, state, by, client))

    atexit.register(at_exit)


@wanted_state
def notified(url: str, action: str, release: str, by: str, client: str) -> Generator:
    """
    Ensure the webhook was told how this run went (call with ``_run_once=True``, last).

    + url: the webhook
    + action: ``"deploy"``, ``"rollback"`` or ``"restore"``
    + release: the release deployed or rolled back to
    + by: user@machine running pyinfra
    + client: the client file

    Never a change: a message is not a change to the site.

    **Example:**

    .. code:: python

        notify.notified(name="webhook told", url=url, action="deploy", release=sha,
                        by=by, client=file, _run_once=True)
    """
    if not preparing():
        send_once(host.state, url, message(action, release, host.state, by, client))
    return
    yield
