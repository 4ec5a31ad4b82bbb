"""Wanted states: shared files (e.g. .env) exist on the host before any switch.

Shared files live on the host, never in the upload. Either someone put them into shared/
by hand, or the client file names a local file for each (`shared_sources`), which is
uploaded over SFTP: never on a command line, never in output. What differs is described by
key name only (for KEY=value files), so a dry run can be shown to anyone.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import re
import shlex
from collections.abc import Generator
from dataclasses import replace

from pyinfra import host
from pyinfra.api import FileUploadCommand, QuoteString, StringCommand

from ..common import chain, preparing, refuse, say, wanted_state, would_stop
from ..facts import DeployState, deploy_state
from ..layout import SHARED_DIR, Deploy

# KEY=value, optionally `export KEY=value`: the dotenv shape Craft, Laravel and Symfony read.
_ENV_LINE = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=(.*)")
_LIST_AT_MOST = 20  # key names shown per kind of change
_KIND_WORDS = {"dir": "folder", "emptydir": "folder", "other": "special file"}


def dotenv_values(text: str) -> dict[str, str] | None:
    """KEY -> raw value of a dotenv-style text, or None if some line is not KEY=value.

    Blank lines and `#` comments are skipped; a later KEY wins, as dotenv loaders do. A value
    spanning lines (quoted newlines) makes the text "not dotenv": it is then only ever
    described as "content differs", which is safe.
    """
    values: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _ENV_LINE.fullmatch(line)
        if not match:
            return None
        values[match.group(1)] = match.group(2).strip()
    return values


def _names(keys: list[str]) -> str:
    shown, rest = keys[:_LIST_AT_MOST], len(keys) - _LIST_AT_MOST
    return ", ".join(shown) + (f" and {rest} more" if rest > 0 else "")


def key_changes(old: bytes, new: bytes) -> str:
    """What differs between two versions of a shared file, by key name only, never a value.

    For dotenv-style files: "keys added: A; removed: B; changed: C". Otherwise (or when either
    side is not UTF-8 text): "content differs".
    """
    try:
        before, after = dotenv_values(old.decode()), dotenv_values(new.decode())
    except UnicodeDecodeError:
        return "content differs"
    if before is None or after is None:
        return "content differs"
    added = sorted(after.keys() - before.keys())
    removed = sorted(before.keys() - after.keys())
    changed = sorted(k for k in after.keys() & before.keys() if after[k] != before[k])
    parts = [
        f"{label}: {_names(keys)}"
        for label, keys in (("keys added", added), ("removed", removed), ("changed", changed))
        if keys
    ]
    if not parts:
        return "content differs (comments, order or spacing only; no key or value changed)"
    if not added:  # "keys added" carries the word "keys"; keep it when it is not first
        parts[0] = "keys " + parts[0]
    return "; ".join(parts)


def _remote_content(path: str) -> bytes | None:
    """shared/<path>'s current content, read into memory over SFTP (None if unreadable).

    Only to name the keys that differ; the content never leaves this process.
    """
    buffer = io.BytesIO()
    try:
        if host.get_file(path, buffer) is False:
            return None
    except Exception:  # noqa: BLE001 - any failure only makes the description vaguer
        return None
    return buffer.getvalue()


def _temp_name(path: str) -> str:
    """Fixed temporary name beside `path`: an interrupted upload's leftover is reused."""
    folder, name = posixpath.split(path)
    return posixpath.join(folder, f".{name}.atomic-deploy-tmp")


def upload_steps(data: bytes, dest: str) -> list:
    """Commands that put `data` at `dest` with mode 0600, atomically, never on a command line.

    The temporary file is created empty with mode 0600 first, so the content is never
    readable by others, not even while it is uploaded (SFTP keeps an existing file's mode);
    the rename then replaces `dest` in one step: the site never reads a half-written file.
    """
    tmp = _temp_name(dest)
    create = StringCommand(
        "mkdir", "-p", QuoteString(posixpath.dirname(dest)),
        "&&", "rm", "-f", QuoteString(tmp),
        "&&", "(", "umask", "077", "&&", ":", ">", QuoteString(tmp), ")",
    )  # fmt: skip
    return [
        create,
        FileUploadCommand(io.BytesIO(data), tmp),
        chain(
            StringCommand("chmod", "600", QuoteString(tmp)),
            StringCommand("mv", "-Tf", QuoteString(tmp), QuoteString(dest)),
        ),
    ]


@wanted_state
def shared_files_uploaded(deploy: Deploy) -> Generator:
    """
    Ensure each shared file named in ``shared_sources`` holds exactly its local file.

    + deploy: the host's Deploy settings (shared files and their local sources)

    ``shared/<path>`` is uploaded (SFTP, mode 0600, under a temporary name then renamed)
    when it is missing or its sha256 differs from the local file's; the hash comes with the
    host's one read, so an unchanged file costs nothing. Says what it does; for a changed
    KEY=value file it names the keys added, removed and changed, never a value. Refuses to
    replace a link or a folder at ``shared/<path>``.

    **Example:**

    .. code:: python

        shared_sources.shared_files_uploaded(name="shared files uploaded", deploy=deploy)
    """
    state = deploy_state(deploy.layout, deploy.release)
    index_of = {path: i for i, (kind, path) in enumerate(deploy.layout.shared_paths) if kind == "f"}
    steps: list = []
    after = state
    for path, local in deploy.shared_sources:
        index = index_of[path]
        try:
            with open(local, "rb") as f:  # read once: what is hashed is what is uploaded
                data = f.read()
        except OSError as e:  # it was readable when the inventory loaded
            yield from refuse(f"shared_sources: cannot read {local} for shared/{path}: "
                              f"{e.strerror}")  # fmt: skip
            return
        want = hashlib.sha256(data).hexdigest()
        have = state.shared_kind(index)
        if have in ("file", "emptyfile") and state.shared_sums.get(index) == want:
            continue
        dest = posixpath.join(state.root, SHARED_DIR, path)
        if have == "missing":
            say(f"shared/{path}: upload from {local} (mode 0600)")
        elif have in ("file", "emptyfile"):
            old = _remote_content(dest)
            what = "content differs" if old is None else key_changes(old, data)
            say(f"shared/{path}: replace with {local} ({what})")
        else:
            kind = "link" if have.startswith("link ") else _KIND_WORDS.get(have, have)
            yield from refuse(
                f"shared/{path} is a {kind}; shared_sources only replaces a regular file: "
                f"make {dest} a file or remove '{path}' from shared_sources"
            )
            return
        steps += upload_steps(data, dest)
        after = _with_file(after, index, want, empty=not data)
    yield from steps
    if steps:
        return after


def _with_file(state: DeployState, index: int, digest: str, empty: bool) -> DeployState:
    """`state` once shared file `index` holds content with sha256 `digest`."""
    shared = list(state.shared)
    shared += ["missing"] * (index + 1 - len(shared))
    shared[index] = "emptyfile" if empty else "file"
    mergeable = dict(state.mergeable)
    if index in mergeable:  # a real file in the release merges only into an empty one
        mergeable[index] = empty
    return replace(
        state, shared=shared, shared_sums={**state.shared_sums, index: digest}, mergeable=mergeable
    )


def _how_to_provide(root: str, path: str) -> str:
    """Both ways to get shared/<path> onto this host, as commands a user can copy."""
    address = host.data.get("ssh_hostname") or host.name
    user = host.data.get("ssh_user")
    target = f"{user}@{address}" if user else address
    dest = shlex.quote(posixpath.join(root, SHARED_DIR, path))  # copy-pasteable
    name = posixpath.basename(path)
    name = shlex.quote(f"local{name}" if name.startswith(".") else f"local-{name}")
    client = host.data.get("client_file") or "the client file"
    if host.name.startswith("@local"):
        put = f"cp {name} {dest} && chmod 600 {dest}"
    else:
        put = f"scp {name} {target}:{dest} && ssh {target} chmod 600 {dest}"
    return (
        f"put it on the host ({put}), or name a local file for it in {client}: "
        f"shared_sources: {{{path}: <local file>}}"
    )


@wanted_state
def shared_files_present(deploy: Deploy) -> Generator:
    """
    Ensure every shared file exists in ``shared/``; otherwise stop this host's deploy.

    + deploy: the host's Deploy settings (shared files)

    A site must never go live without its settings (e.g. ``.env``), so a missing
    ``shared/<file>`` fails this host with a message naming the file, the host and how to
    provide it. Placed before the switch and registered with the switch barrier (deploy.py):
    with ``FAIL_PERCENT = 0`` no host switches. Reads nothing new: it decides from the
    host's one read. A dry run says, per host, that the deploy would stop.

    **Example:**

    .. code:: python

        shared_sources.shared_files_present(name="shared files present", deploy=deploy)
    """
    state = deploy_state(deploy.layout, deploy.release)
    sources = dict(deploy.shared_sources)
    missing = []
    for index, (kind, path) in enumerate(deploy.layout.shared_paths):
        if kind != "f" or state.shared_kind(index) != "missing":
            continue
        if preparing() and path in sources:
            continue  # shared_files_uploaded, just before, provides it
        if state.complete(deploy.release) and state.mergeable.get(index):
            continue  # a real file in the release's place is moved there (shared_linked)
        missing.append(path)
    if not missing:
        return
    root = state.root
    if len(missing) == 1:
        path = missing[0]
        what = (
            f"shared/{path} is missing on {host.name} ({root}): the site would go live without it"
        )
        how = _how_to_provide(root, path)
    else:
        files = ", ".join(f"shared/{p}" for p in missing)
        what = f"{files} are missing on {host.name} ({root}): the site would go live without them"
        how = "; ".join(f"for shared/{p}: {_how_to_provide(root, p)}" for p in missing)
    message = f"{what}, so no host switches. Provide {'it' if len(missing) == 1 else 'each'}: {how}"
    if preparing():
        # Not refuse(): raising here would stop the dry run at the first host; every host
        # should say whether it would stop.
        would_stop(message)
    yield StringCommand("echo", QuoteString(f"the deploy stops: {message}"), ">&2;", "exit", "1")
