"""Shared paths, from the client's list to the link in each release and its repair.

The client file's rules for them (`config_errors`, called by config.py before any host is
contacted) are here too.

A shared path (`shared_dirs`, `shared_files`) lives on the host in shared/<path> and survives
releases: each release has a relative link in its place (`link_target`), made when the release
is built (`link_commands`) and put back by the wanted state `shared_linked` when it drifted.
Never uploaded from the source (upload.py leaves them out); shared files' content can come from
the client file (shared_sources.py).
"""

from __future__ import annotations

import posixpath
from collections.abc import Generator
from typing import Any

from pyinfra import host
from pyinfra.api import QuoteString, StringCommand

from ..common import atomic_link, chain, copy_contents, refuse, say, wanted_state
from ..context import run_context
from ..facts import DeployState, deploy_state
from ..layout import PRESERVED_DIR, RELEASES_DIR, SHARED_DIR, Deploy


def _q(*parts: str) -> QuoteString:
    return QuoteString(posixpath.join(*parts))


def config_errors(doc: dict[str, Any]) -> list[str]:
    """What is wrong with the client file's shared paths (defaults filled in), beyond the
    schema: the docroot shared, a path listed twice or inside another, build output inside a
    shared path, a shared_sources entry that is not a listed shared file."""
    errors = []
    shared = [("shared_dirs", p) for p in doc["shared_dirs"]]
    shared += [("shared_files", p) for p in doc["shared_files"]]
    for i, (key, path) in enumerate(shared):
        idx = doc[key].index(path)
        if path == doc["docroot"]:
            errors.append(
                f"{key}[{idx}]: '{path}' is the docroot; the served folder can't be shared"
            )
        for other_key, other in shared[:i] + shared[i + 1 :]:
            if path == other:
                errors.append(f"{key}[{idx}]: '{path}' is also listed in {other_key}")
            elif path.startswith(other + "/"):
                errors.append(
                    f"{key}[{idx}]: '{path}' is inside the shared path '{other}' ({other_key})"
                )
    for i, output in enumerate(doc["build"]["output"]):
        for key, path in shared:
            if output == path or output.startswith(path + "/"):
                errors.append(
                    f"build.output[{i}]: '{output}' is the shared path '{path}' ({key}) or "
                    "inside it: shared paths live on the hosts and are never uploaded"
                )
    listed = doc["shared_files"]
    for path in doc["shared_sources"]:
        if path not in listed:
            where = f"shared_sources: '{path}'"
            if path in doc["shared_dirs"]:
                errors.append(
                    f"{where} is a shared dir; only shared files can come from a local file"
                )
            else:
                names = ", ".join(listed) or "none"
                errors.append(
                    f"{where} is not listed in shared_files (listed: {names}); add it there "
                    "or fix the name"
                )
    return errors


def link_target(path: str) -> str:
    """Relative target of releases/<sha>/<path> -> shared/<path>.

    Counted from the folder holding the link: one '..' per parent inside the release, plus two
    for releases/<sha>. Relative links keep working when the root is moved or chrooted.
    """
    ups = path.count("/") + 2
    return "../" * ups + f"{SHARED_DIR}/{path}"


def link_commands(build: str, deploy: Deploy) -> list[StringCommand]:
    """Commands that turn each shared path of the (not yet live) copy `build` into a link.

    Whatever the copy holds at a shared path is dropped: shared paths live on the host, in
    shared/, and nothing from the upload ever reaches shared/ (a release's files must never
    become a host's settings or content). A missing shared/<file> is never created here: the
    deploy stops before the switch instead (see shared_sources.shared_files_present).
    """
    steps = []
    for _, path in deploy.layout.shared_paths:
        mine = _q(build, path)
        steps += [
            StringCommand("rm", "-rf", mine),
            StringCommand("mkdir", "-p", _q(posixpath.dirname(posixpath.join(build, path)))),
            StringCommand("ln", "-s", QuoteString(link_target(path)), mine),
        ]
    return steps


class Refused(ValueError):
    """A shared path is in a state this tool won't guess about."""


def repair_path(
    state: DeployState, deploy: Deploy, index: int, kind: str, path: str
) -> tuple[list[StringCommand], list[str]]:
    """Commands that make releases/<sha>/<path> the right link, and what to tell the user.

    Content found where the link belongs is never deleted: it is merged into shared/<path>
    when nothing there would be overwritten, and moved to a dated folder otherwise.
    """
    root, sha = state.root, deploy.release
    target = link_target(path)
    link = posixpath.join(root, RELEASES_DIR, sha, path)
    shared = posixpath.join(root, SHARED_DIR, path)
    in_release, in_shared = state.release_kind(index), state.shared_kind(index)
    want = "dir" if kind == "d" else "file"
    steps: list[StringCommand] = []
    words: list[str] = []

    if in_shared not in ("missing", want, f"empty{want}") and not in_shared.startswith("link"):
        raise Refused(f"shared/{path} is a {in_shared}, expected a {want}: move it away")
    if in_release == f"link {target}":
        # A missing shared/<file> is not created empty (a site would go live without its
        # settings): the deploy stops before the switch (shared_sources.shared_files_present).
        return steps, words
    if in_release in ("emptydir", "emptyfile"):
        steps.append(StringCommand("rm", "-rf", _q(link)))
    elif in_release in ("dir", "file"):
        if in_release != want:
            raise Refused(f"releases/{sha}/{path} is a {in_release}, expected a {want} or a link")
        if state.mergeable.get(index):
            words.append(f"releases/{sha}/{path} held content: merged into shared/{path}")
            if kind == "d":
                steps += [
                    StringCommand("mkdir", "-p", _q(shared)),
                    copy_contents(link, shared),
                    StringCommand("rm", "-rf", _q(link)),
                ]
            else:
                steps += [
                    StringCommand("mkdir", "-p", _q(posixpath.dirname(shared))),
                    StringCommand("mv", "-Tf", _q(link), _q(shared)),
                ]
        else:
            stamp = run_context(host.state).stamp  # when this run started
            aside = posixpath.join(PRESERVED_DIR, f"{stamp}-{sha}", path)
            words.append(
                f"releases/{sha}/{path} held content that would overwrite shared/{path}: "
                f"moved to {aside}"
            )
            steps += [
                StringCommand("mkdir", "-p", _q(root, posixpath.dirname(aside))),
                StringCommand("mv", "-T", _q(link), _q(root, aside)),
            ]
    elif in_release == "other":
        raise Refused(f"releases/{sha}/{path} is a special file, expected a link: remove it")
    else:  # missing, or a link to somewhere else
        steps.append(StringCommand("mkdir", "-p", _q(posixpath.dirname(link))))
    was = in_release[5:] if in_release.startswith("link ") else in_release
    words.append(f"releases/{sha}/{path} -> {target} (was {was})")
    steps.append(atomic_link(link, target))
    return steps, words


def repair_all(state: DeployState, deploy: Deploy) -> list[StringCommand]:
    """repair_path for every shared path, saying what each does; raises Refused."""
    steps: list[StringCommand] = []
    for index, (kind, path) in enumerate(deploy.layout.shared_paths):
        commands, words = repair_path(state, deploy, index, kind, path)
        for line in words:
            say(line)
        steps += commands
    return steps


@wanted_state
def shared_linked(deploy: Deploy) -> Generator:
    """
    Ensure each shared dir and file of ``releases/<sha>`` is a relative link to ``shared/``.

    + deploy: the host's Deploy settings (release, shared dirs and files)

    A release is built with these links (see release_populated); this state puts them back
    when they were removed, pointed elsewhere, or replaced by a real folder or file. Content
    found there is merged into ``shared/`` when nothing would be overwritten, and moved to
    ``shared-preserved/<time>-<sha>/`` otherwise; never deleted. A missing shared file is
    not created here: shared_sources provides it, or the deploy stops before the switch.

    **Example:**

    .. code:: python

        shared.shared_linked(name="shared dirs and files linked", deploy=deploy)
    """
    sha = deploy.release
    state = deploy_state(deploy.layout, sha)
    if not state.intact(sha, deploy.digest):
        return  # release_populated builds (or rebuilds) it with its links
    try:
        steps = repair_all(state, deploy)
    except Refused as e:
        yield from refuse(str(e))
        return
    if steps:
        yield chain(*steps)
