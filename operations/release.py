"""Wanted state: releases/<sha> holds a complete copy of the source."""

from __future__ import annotations

import posixpath
from collections.abc import Generator

from pyinfra import host
from pyinfra.api import FunctionCommand, QuoteString, StringCommand

from . import rsync
from .common import append_log, chain, preparing, say, wanted_state
from .facts import deploy_state
from .layout import ASIDE_PREFIX, CACHE_DIR, MARKER, RELEASES_DIR, TMP_PREFIX, Deploy
from .plan import log_line


@wanted_state
def release_populated(deploy: Deploy) -> Generator:
    """
    Ensure ``releases/<sha>`` is a complete copy of the source.

    + deploy: the host's Deploy settings (release, source, exclude)

    The source is uploaded with rsync into ``deploy-cache/`` (delta transfer, ``--delete``,
    no ``.git``), copied to ``releases/.tmp-<sha>``, marked complete (the marker is written
    last) and only then renamed to ``releases/<sha>``. A complete release is never rebuilt;
    an incomplete one made by this tool is rebuilt under the temporary name and the old copy
    is moved aside (``releases/.incomplete-<sha>-<time>``, pruned later).

    **Example:**

    .. code:: python

        release.release_populated(name="release populated", deploy=deploy)
    """
    sha = deploy.release
    state = deploy_state(deploy.layout, sha)
    if state.complete(sha):
        return
    root = state.root
    if preparing():
        cache = posixpath.join(root, CACHE_DIR) if CACHE_DIR in state.dirs else None
        estimate = rsync.estimate(host, deploy.source, cache, deploy.exclude)
        say(f"releases/{sha}: create ({estimate or 'size unknown'})")
    else:
        say(f"releases/{sha}: create")

    yield FunctionCommand(
        rsync.upload, (deploy.source, posixpath.join(root, CACHE_DIR), deploy.exclude), {}
    )
    releases = posixpath.join(root, RELEASES_DIR)
    final = QuoteString(posixpath.join(releases, sha))
    tmp = QuoteString(posixpath.join(releases, TMP_PREFIX + sha))
    steps = [
        StringCommand("rm", "-rf", tmp),
        StringCommand("cp", "-a", QuoteString(posixpath.join(root, CACHE_DIR)), tmp),
        StringCommand(
            "printf",
            "'%s\\n'",
            QuoteString(sha),
            ">",
            QuoteString(posixpath.join(releases, TMP_PREFIX + sha, MARKER)),
        ),
    ]
    if sha in state.entries:  # incomplete copy made by this tool (host_ready checked)
        aside = QuoteString(posixpath.join(releases, f"{ASIDE_PREFIX}{sha}-"))
        say(f"releases/{sha} is incomplete: rebuilt, the old copy moved aside")
        stamped = StringCommand(aside, "$(date +%s)", _separator="")
        steps.append(StringCommand("mv", "-T", final, stamped))
    steps += [
        StringCommand("mv", "-T", tmp, final),
        append_log(root, log_line("populated", sha, deploy.deployed_by)),
    ]
    yield chain(*steps)
