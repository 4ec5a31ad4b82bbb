"""Wanted state: the run said, per host, what goes live: the commits and files since the live
release (see operations/pending.py). Never a change; it reads nothing new (the host's read
is reused) and runs git only on this machine, in the source checkout.
"""

from __future__ import annotations

from collections.abc import Generator

from pyinfra import host

from ..common import preparing, say, wanted_state
from ..context import run_context
from ..facts import deploy_state
from ..layout import Layout
from ..pending import pending_changes
from ..plan import current_release


@wanted_state
def changes_named(layout: Layout, release: str, source: str | None, show_paths: bool) -> Generator:
    """
    Ensure the run named the commits (and the count of files) between the live release and
    `release` on this host, and kept them for the webhook's message.

    + layout: the host's Layout
    + release: the release going live (deploy) or rolled back to
    + source: the client's source checkout (git runs there, locally)
    + show_paths: also list the paths that change (``--data show_paths=true``)

    Says it once per host: while preparing (the dry run), or executing under ``-y``.

    **Example:**

    .. code:: python

        pending.changes_named(name="changes named", layout=layout, release=sha,
                              source=src, show_paths=False)
    """
    state = deploy_state(layout, None)
    live = current_release(state)
    known = run_context(host.state).pending
    told = host.name in known
    if told and known[host.name].live == live:
        return
    # Hosts with the same live release get the same answer: git once per run, not per host.
    same = (p for p in known.values() if (p.live, p.release) == (live, release))
    changes = next(same, None) or pending_changes(source, live, release)
    known[host.name] = changes
    if live == release or (told and not preparing()):
        return
    say(changes.commits_text())
    files = changes.files_text()
    if files:
        say(files)
    if show_paths:
        for line in changes.path_lines():
            say(f"  {line}")
    return
    yield
