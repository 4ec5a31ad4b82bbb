"""Wanted state: each shared path of the release is a relative link into shared/."""

from __future__ import annotations

import os
import posixpath
import time
from collections.abc import Generator

from pyinfra.api import QuoteString, StringCommand

from .common import atomic_link, chain, refuse, say, wanted_state
from .facts import DeployState, deploy_state
from .layout import RELEASES_DIR, SHARED_DIR, Deploy, shared_link_target
from .plan import current_release

PRESERVED_DIR = "shared-preserved"  # content found where a live release needs a link


def _local_kind(source: str, path: str) -> str:
    """What the uploaded release will have at `path`, judged from the local source."""
    full = os.path.join(source, path)
    if os.path.islink(full):
        return f"link {os.readlink(full)}"
    if os.path.isdir(full):
        return "dir" if os.listdir(full) else "emptydir"
    if os.path.isfile(full):
        return "file" if os.path.getsize(full) else "emptyfile"
    return "missing"


def _q(*parts: str) -> QuoteString:
    return QuoteString(posixpath.join(*parts))


def _plan_path(
    state: DeployState,
    deploy: Deploy,
    index: int,
    kind: str,
    path: str,
    in_release: str,
    live: bool,
) -> tuple[list[StringCommand], str | None]:
    """Commands that make releases/<sha>/<path> the link, and what to tell the user.

    Returns ([], None) when nothing is to do; raises ValueError with a reason to refuse.
    """
    root, sha = state.root, deploy.release
    release = posixpath.join(root, RELEASES_DIR, sha)
    target = shared_link_target(path)
    link = posixpath.join(release, path)
    shared = posixpath.join(root, SHARED_DIR, path)
    in_shared = state.shared_kind(index)
    want = "dir" if kind == "d" else "file"
    steps: list[StringCommand] = []
    words: list[str] = []

    if in_shared not in ("missing", f"empty{want}", want) and not in_shared.startswith("link "):
        raise ValueError(f"shared/{path} is a {in_shared}, expected a {want}")
    if in_release == f"link {target}":
        pass
    elif in_release.startswith("link ") or in_release == "missing":
        steps.append(StringCommand("mkdir", "-p", _q(posixpath.dirname(link))))
    elif in_release in (want, f"empty{want}"):
        if in_release == want and in_shared in ("missing", f"empty{want}"):
            words.append(f"seed shared/{path} from the release")
            if kind == "d":
                steps.append(StringCommand("mkdir", "-p", _q(shared)))
                steps.append(StringCommand("cp", "-a", _q(link, "."), _q(shared)))
            else:
                steps.append(StringCommand("mkdir", "-p", _q(posixpath.dirname(shared))))
                steps.append(StringCommand("cp", "-p", _q(link), _q(shared)))
            steps.append(StringCommand("rm", "-rf", _q(link)))
        elif in_release == want and live:
            # Someone wrote into the live release: keep it, dated, beside shared/.
            aside = posixpath.join(
                root, PRESERVED_DIR, f"{time.strftime('%Y%m%dT%H%M%S')}-{sha}", path
            )
            words.append(f"move {path} of the live release to {posixpath.relpath(aside, root)}")
            steps.append(StringCommand("mkdir", "-p", _q(posixpath.dirname(aside))))
            steps.append(StringCommand("mv", "-T", _q(link), _q(aside)))
        else:  # the upload's own copy; shared/ already has the content that counts
            steps.append(StringCommand("rm", "-rf", _q(link)))
    else:
        raise ValueError(f"releases/{sha}/{path} is a {in_release}, expected a {want} or a link")

    if kind == "f" and in_shared == "missing" and not words:
        words.append(f"create empty shared/{path} (mode 0600): fill it in")
        steps.append(StringCommand("mkdir", "-p", _q(posixpath.dirname(shared))))
        steps.append(StringCommand("(", "umask", "077", "&&", "touch", _q(shared), ")"))
    if in_release != f"link {target}":
        was = f" (was -> {in_release[5:]})" if in_release.startswith("link ") else ""
        words.append(f"releases/{sha}/{path} -> {target}{was}")
        steps.append(atomic_link(link, target))
    return steps, "; ".join(words) or None


@wanted_state
def shared_linked(deploy: Deploy) -> Generator:
    """
    Ensure each shared dir and file of ``releases/<sha>`` is a relative link to ``shared/``.

    + deploy: the host's Deploy settings (release, shared dirs and files)

    Content the release ships at a shared path seeds ``shared/`` when that is empty; content
    already in ``shared/`` is never overwritten or deleted. A missing shared file is created
    empty (mode 0600). Content found in the live release where a link belongs is moved to
    ``shared-preserved/<time>-<sha>/`` instead of being deleted.

    **Example:**

    .. code:: python

        shared.shared_linked(name="shared dirs and files linked", deploy=deploy)
    """
    sha = deploy.release
    state = deploy_state(deploy.layout, sha)
    exists = sha in state.entries
    live = current_release(state) == sha
    steps: list[StringCommand] = []
    for index, (kind, path) in enumerate(deploy.layout.shared_paths):
        # Before the release exists (a dry run of a first deploy), judge from the source.
        in_release = state.release_kind(index) if exists else _local_kind(deploy.source, path)
        try:
            commands, words = _plan_path(state, deploy, index, kind, path, in_release, live)
        except ValueError as e:
            yield from refuse(str(e))
            return
        if words:
            say(words)
        steps += commands
    if steps:
        yield chain(*steps)
