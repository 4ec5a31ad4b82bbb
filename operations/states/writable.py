"""Writable dirs: folders inside each release that the site writes to at run time.

Deployer's `writable_dirs` (e.g. Craft's `web/cpresources/`). Unlike a shared dir, a writable
dir is not shared between releases: each release starts with what the upload holds there (or
empty). The site's writes there are not edits of the release, so the manifest leaves these
folders out (manifest.listing_command) and a rerun of the same release changes nothing.

The client file's rules for them (`config_errors`) are here, called by config.py before any
host is contacted; `build_commands` makes them when a release is built (release.py), and the
wanted state `writable_present` puts back one that went missing from the release.
"""

from __future__ import annotations

import posixpath
from collections.abc import Generator
from typing import Any

from pyinfra.api import QuoteString, StringCommand

from ..common import chain, say, wanted_state
from ..facts import deploy_state
from ..layout import RELEASES_DIR, Deploy


def _q(*parts: str) -> QuoteString:
    return QuoteString(posixpath.join(*parts))


def config_errors(doc: dict[str, Any]) -> list[str]:
    """What is wrong with the client file's writable_dirs (defaults filled in), beyond the
    schema: the docroot itself, a shared path or a folder inside or around one, one writable
    dir inside another."""
    errors = []
    writable = doc.get("writable_dirs", [])
    shared = [("shared_dirs", p) for p in doc["shared_dirs"]]
    shared += [("shared_files", p) for p in doc["shared_files"]]
    for i, path in enumerate(writable):
        where = f"writable_dirs[{i}]: '{path}'"
        if path == doc["docroot"]:
            errors.append(f"{where} is the docroot; name the folders in it the site writes to")
        for key, other in shared:
            if path == other or path.startswith(other + "/"):
                errors.append(f"{where} is the shared path '{other}' ({key}) or inside it: "
                              "shared paths are already writable and survive releases")  # fmt: skip
            elif other.startswith(path + "/"):
                errors.append(f"{where} holds the shared path '{other}' ({key}); name the "
                              "writable folders beside it instead")  # fmt: skip
        for other in writable[:i] + writable[i + 1 :]:
            if path.startswith(other + "/"):
                errors.append(f"{where} is inside the writable dir '{other}'")
    return errors


def permission_commands(folder: str, deploy: Deploy, acl: bool) -> list[StringCommand]:
    """chmod/ACL/chgrp making `folder` (a writable dir) what the client asks for.

    Mode: the folder and the folders in it (files keep theirs). Group: an ACL entry for the
    group, also as the default for what the site creates later, where the host has setfacl;
    otherwise the group owner.
    """
    steps = []
    mode, group = deploy.writable_mode, deploy.writable_group
    if mode:
        steps.append(StringCommand(
            "find", QuoteString(folder), "-type", "d",
            "-exec", "chmod", QuoteString(mode), "{}", "+",
        ))  # fmt: skip
    if group and acl:
        rule = QuoteString(f"g:{group}:rwX")
        default = QuoteString(f"d:g:{group}:rwX")
        steps.append(StringCommand("setfacl", "-R", "-m", rule, "-m", default, QuoteString(folder)))
    elif group:
        steps.append(StringCommand("chgrp", "-R", QuoteString(group), QuoteString(folder)))
    return steps


def build_commands(build: str, cache: str, deploy: Deploy, acl: bool) -> list[StringCommand]:
    """Commands that make each writable dir of the (not yet live) copy `build`.

    It holds what the upload holds there, as its own copy even when the release is made of
    hard links (copy_mode hardlink): a release's writes must never reach another release.
    """
    steps = []
    for path in deploy.layout.writable_dirs:
        mine = _q(build, path)
        if deploy.copy_mode == "hardlink":
            steps += [
                StringCommand("rm", "-rf", mine),
                StringCommand(
                    "if",
                    "[",
                    "-d",
                    _q(cache, path),
                    "];",
                    "then",
                    "cp",
                    "-a",
                    _q(cache, path),
                    mine,
                    ";",
                    "fi",
                ),  # fmt: skip
            ]
        steps.append(StringCommand("mkdir", "-p", mine))
        steps += permission_commands(posixpath.join(build, path), deploy, acl)
    return steps


@wanted_state
def writable_present(deploy: Deploy) -> Generator:
    """
    Ensure each writable dir exists in ``releases/<sha>`` (made when the release is built).

    + deploy: the host's Deploy settings (writable dirs, their mode and group)

    One removed on the server is created again, empty, with the client's mode and group;
    what the site wrote into an existing one is never touched.

    **Example:**

    .. code:: python

        writable.writable_present(name="writable dirs present", deploy=deploy)
    """
    sha = deploy.release
    state = deploy_state(deploy.layout, sha)
    if not state.intact(sha, deploy.digest):
        return  # release_populated builds (or rebuilds) it with its writable dirs
    steps: list[StringCommand] = []
    for index, path in enumerate(deploy.layout.writable_dirs):
        kind = state.writable_kind(index)
        if kind == "dir":
            continue
        if kind != "missing":
            say(f"{RELEASES_DIR}/{sha}/{path} is a {kind}, not a folder: left as it is")
            continue
        say(f"{RELEASES_DIR}/{sha}/{path}: create (writable dir)")
        folder = posixpath.join(state.root, RELEASES_DIR, sha, path)
        steps += [StringCommand("mkdir", "-p", _q(folder))]
        steps += permission_commands(folder, deploy, state.acl)
    if steps:
        yield chain(*steps)
