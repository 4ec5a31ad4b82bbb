"""Wanted state: releases/<sha> holds a complete, unedited copy of the source."""

from __future__ import annotations

import posixpath
from collections.abc import Generator
from dataclasses import replace

from pyinfra import host
from pyinfra.api import FunctionCommand, QuoteString, StringCommand

from .. import deploy_log, rsync
from ..common import (
    chain,
    preparing,
    refuse,
    say,
    wanted_state,
)
from ..context import run_context
from ..copy_mode import run_noting_fallback, run_showing_progress
from ..facts import DeployState, Entry, deploy_state
from ..layout import (
    ASIDE_PREFIX,
    CACHE_DIR,
    MARKER,
    RELEASES_DIR,
    TMP_PREFIX,
    Deploy,
)
from ..manifest import copy_listed, list_release, parse_differences
from ..plan import current_release
from . import shared, writable
from .shared import Refused, repair_all
from .switch import move_current


def _q(*parts: str) -> QuoteString:
    return QuoteString(posixpath.join(*parts))


def made_here(state: DeployState, sha: str) -> bool:
    """releases/<sha> was made by this tool: its marker names it, or the log says it was built
    (a copy that lost its marker). Otherwise a person or another tool put it there."""
    return state.complete(sha) or any(
        e.event == deploy_log.POPULATED and e.release == sha for e in deploy_log.parse(state.log)
    )


def _describe(state: DeployState, deploy: Deploy, aside: str) -> str | None:
    """Say what populating will do, and why; return why an existing copy goes aside."""
    sha = deploy.release
    if state.complete(sha) and state.manifest == "ok" and not state.intact(sha, deploy.digest):
        say(f"releases/{sha} holds another upload under the same name (the client's exclude "
            f"or shared paths changed): a copy of this upload replaces it; the old one is kept "
            f"as releases/{aside}")  # fmt: skip
        return deploy_log.REPLACED
    if state.complete(sha) and state.manifest == "changed":
        changes = parse_differences(state.differences)
        shown = ", ".join(changes[:10]) + (", ..." if len(changes) > 10 else "")
        say(f"releases/{sha} was changed on the server ({shown}): a clean copy replaces it; "
            f"the changed copy is kept as releases/{aside}")  # fmt: skip
        return deploy_log.EDITED
    if sha in state.entries and not made_here(state, sha):
        say(f"releases/{sha} exists but was not made by atomic-deploy (no completion marker, "
            f"not in the deploy log): moved aside as releases/{aside} (kept), and the release "
            f"is built in its place")  # fmt: skip
        return deploy_log.FOREIGN
    if sha in state.entries:
        why = "its file list is missing" if state.complete(sha) else "it has no completion marker"
        say(f"releases/{sha} is incomplete ({why}): rebuilt; the old copy kept as "
            f"releases/{aside}")  # fmt: skip
        return deploy_log.INCOMPLETE
    if preparing():
        cache = posixpath.join(state.root, CACHE_DIR) if CACHE_DIR in state.dirs else None
        estimate = rsync.estimate(host, deploy.source, cache, deploy.exclude)
        say(f"releases/{sha}: create ({estimate or 'size unknown'})")
    else:
        say(f"releases/{sha}: create")
    return None


def populate_commands(deploy: Deploy, cache: str, build: str, acl: bool) -> list[StringCommand]:
    """Commands making `build` (a fresh name under releases/) a complete release of `cache`:
    the copy, its shared paths linked, its writable dirs made, its manifest, its marker last."""
    # Writable dirs are the site's to write to: not part of what the release holds.
    unlisted = [path for _, path in deploy.layout.shared_paths] + list(deploy.layout.writable_dirs)
    # The marker: the release's name, then the digest of the upload set it holds.
    marker = [QuoteString(v) for v in (deploy.release, deploy.digest) if v]
    return [
        StringCommand("rm", "-rf", _q(build)),
        # The manifest is written while copying where that gives the same listing, else below.
        copy_listed(deploy.copy_mode, cache, build, unlisted),
        *shared.link_commands(build, deploy),
        *writable.build_commands(build, cache, deploy, acl),
        list_release(build, unlisted),
        StringCommand("printf", "'%s\\n'", *marker, ">", _q(build, MARKER)),
    ]


@wanted_state
def release_populated(deploy: Deploy) -> Generator:
    """
    Ensure ``releases/<sha>`` is a complete copy of the source that nobody has edited.

    + deploy: the host's Deploy settings (release, source, exclude, shared paths)

    The source is uploaded with rsync into ``deploy-cache/`` (delta transfer, ``--delete``,
    no ``.git``), copied to ``releases/.tmp-<sha>-<run>``, its shared paths turned into links
    into ``shared/``, its file list written (the manifest) and its completion marker written
    last; only then is it renamed to ``releases/<sha>``.

    A complete release whose files still match its manifest is left alone. One that was
    edited on the server, lost files or lost its marker is rebuilt the same way; the old copy
    is kept as ``releases/.aside-<sha>-<run>`` (pruned later by keep_releases). So is a
    folder a person or another tool left under the release's name. If it is the live
    release, ``current`` first moves to the clean copy, so the site never serves a missing
    or half-built release.

    **Example:**

    .. code:: python

        release.release_populated(name="release populated", deploy=deploy)
    """
    sha = deploy.release
    state = deploy_state(deploy.layout, sha)
    if state.intact(sha, deploy.digest):
        return
    root = state.root
    releases = posixpath.join(root, RELEASES_DIR)
    run_id = run_context(host.state).id  # a run never reuses an interrupted run's leftovers
    build_name, aside_name = f"{TMP_PREFIX}{sha}-{run_id}", f"{ASIDE_PREFIX}{sha}-{run_id}"
    build, final = posixpath.join(releases, build_name), posixpath.join(releases, sha)
    why = _describe(state, deploy, aside_name)

    # Content someone put where the old copy has links into shared/ must outlive the copy.
    repairs: list[StringCommand] = []
    if state.complete(sha):
        try:
            repairs = repair_all(state, deploy)
        except Refused as e:
            yield from refuse(str(e))
            return

    yield FunctionCommand(
        rsync.upload, (deploy.source, posixpath.join(root, CACHE_DIR), deploy.exclude), {}
    )
    cache = posixpath.join(root, CACHE_DIR)
    steps = [*repairs, *populate_commands(deploy, cache, build, state.acl)]
    by = deploy.deployed_by
    moved = deploy_log.aside_detail(aside_name, why or "")  # why: None if nothing is there
    put_aside = [
        StringCommand("mv", "-T", _q(final), _q(releases, aside_name)),
        deploy_log.append_command(root, deploy_log.line(deploy_log.ASIDE, sha, by, moved)),
    ]
    if sha not in state.entries:
        steps.append(StringCommand("mv", "-T", _q(build), _q(final)))
    elif current_release(state) != sha:
        steps += [*put_aside, StringCommand("mv", "-T", _q(build), _q(final))]
    else:
        # Live: serve the clean copy first, then give it its real name by a second switch.
        # The name must be free of `current` before the copy can take it, so the clean copy
        # is hard-linked (instant, and only ever ours) rather than renamed.
        relinked = posixpath.join(releases, f"{build_name}-final")
        steps += [
            move_current(root, build_name),
            *put_aside,
            StringCommand("cp", "-al", _q(build), _q(relinked)),
            StringCommand("mv", "-T", _q(relinked), _q(final)),
            move_current(root, sha),
            StringCommand("rm", "-rf", _q(build)),
        ]
    line = deploy_log.line(deploy_log.POPULATED, sha, by)
    steps.append(deploy_log.append_command(root, line))
    if deploy.copy_mode == "reflink":  # to say so when the file system can't clone
        yield FunctionCommand(run_noting_fallback, (chain(*steps), releases), {})
    else:  # the copy's progress lines appear as they come
        yield FunctionCommand(run_showing_progress, (chain(*steps),), {})
    return _built(state, deploy, line)


def _built(state: DeployState, deploy: Deploy, line: str) -> DeployState | None:
    """`state` once a new releases/<sha> is in place, as populating leaves it.

    None (read the host again) where populating did more than add the release: a copy was
    put aside, or the upload target had to be created.
    """
    sha, paths = deploy.release, deploy.layout.shared_paths
    if sha in state.entries or CACHE_DIR not in state.dirs:
        return None
    return replace(
        state,
        entries={**state.entries, sha: Entry(sha, "dir", sha)},
        manifest="ok",  # the manifest was just written for this very copy
        digest=deploy.digest,
        differences=[],
        in_release=[f"link {shared.link_target(path)}" for _, path in paths],
        writable=["dir" for _ in deploy.layout.writable_dirs],
        mergeable={},
        log=[*state.log, line],
    )
