"""Wanted state: `current` points at the release, and the docroot link goes through it.

`move_current` is the one way `current` moves (switch, rollback, the switch back after a
failed health check, the live rebuild of an edited release): always by rename(2), and logged.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Generator
from dataclasses import replace

from pyinfra import host, logger
from pyinfra.api import StringCommand

from .. import deploy_log
from ..common import (
    atomic_link,
    chain,
    preparing,
    refuse,
    say,
    temp_link_name,
    wanted_state,
)
from ..context import run_context
from ..facts import DeployState, deploy_state
from ..layout import CURRENT_LINK, RELEASES_DIR, Deploy
from ..plan import current_release
from ..pyinfra_adapter import current_op_hash


def move_current(root: str, release: str, line: str | None = None) -> StringCommand:
    """One host command: ``current`` -> ``releases/<release>`` by rename(2), then `line`.

    `release` is an entry of releases/ (a release, or the clean copy the live rebuild serves
    for a moment). `line` is the deploy log line recording the move (`deploy_log.line(SWITCH
    or ROLLBACK, release, ...)`), appended only once the link is in place; None when the move
    is a step of something logged as a whole (the live rebuild logs "populated").
    """
    link = atomic_link(posixpath.join(root, CURRENT_LINK), f"{RELEASES_DIR}/{release}")
    return chain(link, deploy_log.append_command(root, line)) if line else link


def current_moved(state: DeployState, release: str, line: str) -> DeployState:
    """`state` once `move_current(state.root, release, line)` has run."""
    return switched(state, "current", CURRENT_LINK, f"{RELEASES_DIR}/{release}", line)


def switched(state: DeployState, which: str, link: str, target: str, line: str = "") -> DeployState:
    """`state` once link `which` ("current" or "docroot", at path `link` under the root) points
    at `target` by `atomic_link`, with `line` added to the deploy log."""
    tmp = temp_link_name(posixpath.basename(link))
    return replace(
        state,
        **{which: f"link {target}"},
        temp_links=[t for t in state.temp_links if t != tmp],
        log=[*state.log, line] if line else state.log,
    )


def _warn(message: str) -> None:
    host.log_styled(message, fg="yellow", log_func=logger.warning)


@wanted_state
def current_switched(
    deploy: Deploy, held_back: Callable[[], str | None] | None = None
) -> Generator:
    """
    Ensure ``current`` is a link to ``releases/<sha>``, switched by rename(2).

    + deploy: the host's Deploy settings (release)
    + held_back: the all-hosts barrier (``run.held_back``): while executing, a reason from it
      leaves ``current`` alone and says, on this host, which host did not get through which
      operation. Checked here rather than through ``_if``, which would only show
      "No changes" (and makes a dry run list the switch as a "Conditional Change").

    The switch is one rename of a new link over the old one: at every moment ``current``
    points at a complete release, old or new. Refuses to point at a release that is not
    complete. Each switch is appended to the deploy log (it orders releases for pruning and
    names the rollback target).

    **Example:**

    .. code:: python

        switch.current_switched(name="current -> release", deploy=deploy,
                                held_back=run.held_back)
    """
    if held_back is not None and not preparing():
        reason = held_back()
        if reason:
            _warn(f"{CURRENT_LINK} not switched (held back): no host switches until every "
                  f"host is ready, and {reason}")  # fmt: skip
            return
    sha = deploy.release
    state = deploy_state(deploy.layout, sha)
    target = f"{RELEASES_DIR}/{sha}"
    have = state.link_target("current")
    if preparing():  # for the dry run's summary
        plan = f"stays at {target}" if have == target else f"{have or '(none)'} -> {target}"
        run_context(host.state).dry_switches[host.name] = (
            current_op_hash(host) or "", f"{CURRENT_LINK} {plan}"
        )
    if have == target:
        return
    # While preparing a first deploy the release is not there yet; populate comes first.
    if not state.complete(sha) and not preparing():
        yield from refuse(f"{target} is not complete; not switching {CURRENT_LINK} to it")
        return
    say(f"{CURRENT_LINK}: {have or '(none)'} -> {target}")
    was = current_release(state) or ""
    line = deploy_log.line(deploy_log.SWITCH, sha, deploy.deployed_by, f"from {was or '-'}")
    yield move_current(state.root, sha, line)
    return current_moved(state, sha, line)


@wanted_state
def docroot_linked(deploy: Deploy) -> Generator:
    """
    Ensure ``<docroot>`` (default ``htdocs``) is a link to ``current/<docroot>``.

    + deploy: the host's Deploy settings (docroot)

    The web server serves ``<root>/<docroot>``; through ``current`` it always shows the live
    release. Switched by rename(2) like ``current``.

    **Example:**

    .. code:: python

        switch.docroot_linked(name="htdocs -> current/htdocs", deploy=deploy)
    """
    docroot = deploy.layout.docroot
    state = deploy_state(deploy.layout, None)
    target = f"{CURRENT_LINK}/{docroot}"
    have = state.link_target("docroot")
    if have == target:
        return
    if state.link_target("current") is None and not preparing():
        # A first deploy whose switch was held back: a link now would point at nothing.
        _warn(f"{docroot} not linked: {CURRENT_LINK} does not exist yet (no switch happened)")
        return
    say(f"{docroot}: {have or '(none)'} -> {target}")
    yield atomic_link(posixpath.join(state.root, docroot), target)
    return switched(state, "docroot", docroot, target)
