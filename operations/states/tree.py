"""Wanted state: the deploy root's folders exist."""

from __future__ import annotations

import posixpath
from collections.abc import Generator

from pyinfra.api import QuoteString, StringCommand

from ..common import chain, say, wanted_state
from ..facts import deploy_state
from ..layout import CACHE_DIR, META_DIR, RELEASES_DIR, SHARED_DIR, Deploy


@wanted_state
def tree_present(deploy: Deploy) -> Generator:
    """
    Ensure ``deploy-cache/``, ``releases/``, ``shared/<each shared dir>`` and the tool's own
    ``.atomic-deploy/`` (mode 0700: it holds the deploy log) exist under the deploy root.

    + deploy: the host's Deploy settings

    Creates the root itself if it is missing. Where the client sets ``shared_mode`` or
    ``shared_group``, each shared dir gets them (the folder itself, not its content). Removes
    only temporary links that an interrupted switch left beside ``current``.

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
    steps = []
    if state.root_state == "missing":
        say(f"create deploy root {root}")
    if missing or state.root_state == "missing":
        if missing:
            say("create " + ", ".join(f"{d}/" for d in missing))
        paths = [QuoteString(posixpath.join(root, d)) for d in missing] or [QuoteString(root)]
        steps.append(StringCommand("mkdir", "-p", *paths))
    if META_DIR in missing:
        steps.append(StringCommand("chmod", "700", QuoteString(posixpath.join(root, META_DIR))))
    for link in state.temp_links:
        say(f"remove {link} (left by an interrupted switch)")
        steps.append(StringCommand("rm", "-f", QuoteString(posixpath.join(root, link))))
    steps += _permissions(state, deploy, missing)
    if steps:
        yield chain(*steps)


def _permissions(state, deploy: Deploy, missing: list[str]) -> list[StringCommand]:
    """chmod/chgrp for shared dirs whose mode or group differ from the client's wish."""
    mode, group = deploy.shared_mode, deploy.shared_group
    steps = []
    for index, (kind, path) in enumerate(deploy.layout.shared_paths):
        if kind != "d" or not (mode or group):
            continue
        have_mode, have_group = state.shared_meta.get(index, ("", ""))
        new = f"{SHARED_DIR}/{path}" in missing
        full = QuoteString(posixpath.join(state.root, SHARED_DIR, path))
        if mode and (new or have_mode.lstrip("0") != mode.lstrip("0")):
            if not new:
                say(f"{SHARED_DIR}/{path}: mode {have_mode} -> {mode}")
            steps.append(StringCommand("chmod", QuoteString(mode), full))
        if group and (new or have_group != group):
            if not new:
                say(f"{SHARED_DIR}/{path}: group {have_group} -> {group}")
            steps.append(StringCommand("chgrp", QuoteString(group), full))
    return steps
