"""Wanted state: the host can take a deploy (checked before anything changes on any host)."""

from __future__ import annotations

from collections.abc import Generator

from pyinfra import host

from ..common import refuse, wanted_state
from ..facts import deploy_state
from ..layout import CURRENT_LINK, RELEASES_DIR, Deploy

_DOCROOT_HELP = (
    "{root}/{name} is a real {kind}, not a link, so it can't be switched atomically. To migrate: "
    "move it away (mv {name} {name}.before-atomic-deploy), run the deploy again right away (it "
    "creates {name} -> " + CURRENT_LINK + "/{name}), then check the site and remove the old copy."
)


@wanted_state
def host_ready(deploy: Deploy) -> Generator:
    """
    Ensure the host can take this deploy; otherwise stop it before anything changes.

    + deploy: the host's Deploy settings (host data, see config.host_data)

    Refuses when the deploy root is a file or not writable, rsync is missing on the host,
    ``current`` or the docroot link is a real directory or file, or ``releases/<sha>`` is a
    file or a symlink. (A folder there that this tool did not make is moved aside by
    ``release.release_populated``.)

    **Example:**

    .. code:: python

        preflight.host_ready(name="host ready", deploy=deploy)
    """
    state = deploy_state(deploy.layout, deploy.release)
    root = state.root
    if state.root_state == "notdir":
        yield from refuse(f"deploy root {root} exists but is not a directory")
        return
    if state.root_state in ("readonly", "unreadable"):
        yield from refuse(
            f"deploy root {root} is not writable by {host.data.get('ssh_user') or 'this user'}"
        )
        return
    if not state.rsync:
        yield from refuse(
            "rsync is not installed on the host (needed for the upload): install it, "
            "e.g. apt-get install rsync"
        )
        return
    for which, name in (("current", CURRENT_LINK), ("docroot", deploy.layout.docroot)):
        kind = getattr(state, which)
        if kind in ("dir", "emptydir", "file", "emptyfile", "other"):
            kind = {"emptydir": "directory", "dir": "directory", "emptyfile": "file"}.get(
                kind, kind
            )
            yield from refuse(_DOCROOT_HELP.format(root=root, name=name, kind=kind))
            return
    entry = state.entries.get(deploy.release)
    if entry and entry.kind != "dir":
        # A folder there is moved aside by release_populated; a link may be someone's setup
        # (pointing anywhere), so it is not touched.
        what = "a symbolic link" if entry.kind == "link" else "a file"
        yield from refuse(
            f"{root}/{RELEASES_DIR}/{deploy.release} is {what}, not a release folder: "
            f"atomic-deploy builds the release under that name. Move it out of {RELEASES_DIR}/ "
            "and deploy again"
        )
