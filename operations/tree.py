"""Wanted state: the deploy root's folders exist."""

from __future__ import annotations

import posixpath
from collections.abc import Generator

from pyinfra.api import QuoteString, StringCommand

from .common import say, wanted_state
from .facts import deploy_state
from .layout import CACHE_DIR, META_DIR, RELEASES_DIR, SHARED_DIR, Deploy


@wanted_state
def tree_present(deploy: Deploy) -> Generator:
    """
    Ensure ``deploy-cache/``, ``releases/``, ``shared/<each shared dir>`` and the tool's own
    ``.atomic-deploy/`` (mode 0700: it holds the deploy log) exist under the deploy root.

    + deploy: the host's Deploy settings

    Creates the root itself if it is missing. Never removes anything.

    **Example:**

    .. code:: python

        tree.tree_present(name="tree present", deploy=deploy)
    """
    state = deploy_state(deploy.layout, deploy.release)
    root = state.root
    missing = [d for d in (CACHE_DIR, RELEASES_DIR, SHARED_DIR, META_DIR) if d not in state.dirs]
    for index, (kind, path) in enumerate(deploy.layout.shared_paths):
        # A link in shared/ (e.g. to a bigger disk) counts as present; shared_linked checks kinds.
        if kind == "d" and state.shared_kind(index) == "missing":
            missing.append(f"{SHARED_DIR}/{path}")
    if state.root_state == "ok" and not missing:
        return
    if state.root_state == "missing":
        say(f"create deploy root {root}")
    if missing:
        say("create " + ", ".join(f"{d}/" for d in missing))
    paths = [QuoteString(posixpath.join(root, d)) for d in missing] or [QuoteString(root)]
    command = [StringCommand("mkdir", "-p", *paths)]
    if META_DIR in missing:
        command += [
            "&&",
            StringCommand("chmod", "700", QuoteString(posixpath.join(root, META_DIR))),
        ]
    yield StringCommand(*command)
