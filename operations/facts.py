"""What a deploy root looks like on a host, gathered in one round trip and reused.

Every operation decides from the state of the host (pyinfra does not cache facts). Reading it
all with one small shell script makes that one remote command instead of one per path, and
the result is reused by the following operations until one of them changes something on
that host (see `deploy_state`): a converged host costs one read per run phase.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyinfra import host
from pyinfra.api import FactBase, State, StringCommand
from pyinfra.api.state import BaseStateCallback

from .common import TEMP_LINK_SUFFIX
from .context import run_context
from .layout import (
    CACHE_DIR,
    CURRENT_LINK,
    LOG_FILE,
    MANIFEST,
    MARKER,
    META_DIR,
    NO_RELEASE,
    RELEASES_DIR,
    SHARED_DIR,
    Layout,
)
from .manifest import listing_command
from .pyinfra_adapter import execute_stage, preparing
from .shell import script

LOG_LINES = 1000  # how much of the deploy log a read brings back (history, prune order)
LOCK_DIR = f"{META_DIR}/lock"  # the deploy lock (see lock.py): the read reports its owner


@dataclass
class Entry:
    """One entry of releases/: kind is dir, link or other; marker is the sha in its marker."""

    name: str
    kind: str
    marker: str | None


@dataclass
class DeployState:
    """A host's deploy root as one object (see `DeployTree`)."""

    root: str = ""
    root_state: str = "missing"  # ok, missing, notdir, readonly, unreadable
    rsync: bool = False
    dirs: set[str] = field(default_factory=set)
    current: str = "missing"  # "link <target>", "dir", "emptydir", "file", "other", "missing"
    docroot: str = "missing"
    entries: dict[str, Entry] = field(default_factory=dict)
    acl: bool = False  # the host has setfacl (writable dirs' group)
    shared: list[str] = field(default_factory=list)  # kind of shared/<path>, by index
    in_release: list[str] = field(default_factory=list)  # kind of releases/<sha>/<path>
    writable: list[str] = field(default_factory=list)  # releases/<sha>/<writable>: "dir" or kind
    mergeable: dict[int, bool] = field(default_factory=dict)  # release content -> shared/ ok
    shared_meta: dict[int, tuple[str, str]] = field(default_factory=dict)  # (mode, group)
    shared_sums: dict[int, str] = field(default_factory=dict)  # sha256 of a shared file
    manifest: str | None = None  # releases/<sha>: "ok", "changed", "missing" (None: no release)
    digest: str | None = None  # releases/<sha>: its upload set's digest (None: not recorded)
    differences: list[str] = field(default_factory=list)  # diff lines, manifest vs. now
    temp_links: list[str] = field(default_factory=list)  # leftover .<name>.atomic-deploy-tmp
    lock: dict[str, str] | None = None  # owner of .atomic-deploy/lock, if it exists
    log: list[str] = field(default_factory=list)

    def link_target(self, which: str) -> str | None:
        """Target of `current` or the docroot link, None if it is not a symlink."""
        value = self.current if which == "current" else self.docroot
        return value[5:] if value.startswith("link ") else None

    def shared_kind(self, index: int) -> str:
        """Kind of shared/<path> for the index-th shared path ("missing" if unknown)."""
        return self.shared[index] if index < len(self.shared) else "missing"

    def release_kind(self, index: int) -> str:
        """Kind of releases/<sha>/<path> for the index-th shared path."""
        return self.in_release[index] if index < len(self.in_release) else "missing"

    def writable_kind(self, index: int) -> str:
        """Kind of releases/<sha>/<path> for the index-th writable dir."""
        return self.writable[index] if index < len(self.writable) else "missing"

    def complete(self, sha: str) -> bool:
        """releases/<sha> is a directory whose completion marker names <sha>."""
        entry = self.entries.get(sha)
        return bool(entry and entry.kind == "dir" and entry.marker == sha)

    def intact(self, sha: str, digest: str | None = None) -> bool:
        """releases/<sha> (the release the state was read for) is complete and unedited, and
        holds the upload set with `digest` (releases made before digests were recorded pass).
        """
        same_upload = digest is None or self.digest is None or self.digest == digest
        return self.complete(sha) and self.manifest == "ok" and same_upload


class DeployTree(FactBase):
    """The state of a deploy root: layout dirs, links, releases, shared paths, deploy log."""

    def command(
        self, root, sha, docroot, shared_dirs, shared_files, meta, marker, manifest, owner=None,
        writable_dirs=(),
    ):
        values = {
            "r": root or "",
            "sha": sha,
            "docroot": docroot,
            "meta": meta,
            "lockdir": LOCK_DIR,
            "marker": marker,
            "manifest": manifest,
            "current_link": CURRENT_LINK,
            "releases_dir": RELEASES_DIR,
        }
        read = script(
            "deploy_tree.sh",
            {
                **values,
                "cache_dir": CACHE_DIR,
                "shared_dir": SHARED_DIR,
                "tmplink_suffix": TEMP_LINK_SUFFIX,
                "logfile": LOG_FILE,
                "loglines": str(LOG_LINES),
                "listing": listing_command(
                    [*shared_dirs, *shared_files, *writable_dirs]
                ).get_raw_value(),
            },
            [f"d:{p}" for p in shared_dirs] + [f"f:{p}" for p in shared_files]
            + [f"w:{p}" for p in writable_dirs],
        )
        if owner is None:
            return read
        # This read also takes the deploy lock (see fold_lock_into_read).
        return StringCommand(script("take_lock.sh", {**values, "owner": owner}), ";", read)

    @staticmethod
    def default() -> DeployState:
        return DeployState()

    def process(self, output: list[str]) -> DeployState:
        return parse_deploy_tree(output)


def parse_deploy_tree(lines: list[str]) -> DeployState:
    """Turn the script's output lines into a DeployState."""
    state = DeployState()
    for line in lines:
        tag, _, rest = line.partition(" ")
        if tag == "root":
            state.root = rest
        elif tag == "rootstate":
            state.root_state = rest
        elif tag == "rsync":
            state.rsync = rest == "yes"
        elif tag == "acl":
            state.acl = rest == "yes"
        elif tag == "dir":
            state.dirs.add(rest)
        elif tag == "top":
            which, _, kind = rest.partition(" ")
            setattr(state, which, kind)
        elif tag == "entry":
            kind, marker, name = rest.split(" ", 2)
            state.entries[name] = Entry(name, kind, None if marker == "-" else marker)
        elif tag in ("shared", "rel", "wr"):
            index, _, kind = rest.partition(" ")
            target = {"shared": state.shared, "rel": state.in_release, "wr": state.writable}[tag]
            target.extend(["missing"] * (int(index) + 1 - len(target)))
            target[int(index)] = kind
        elif tag == "relmerge":
            index, _, answer = rest.partition(" ")
            state.mergeable[int(index)] = answer == "yes"
        elif tag == "sharedmeta":
            index, mode, group = rest.split(" ", 2)
            state.shared_meta[int(index)] = (mode, group)
        elif tag == "sharedsum":
            index, _, digest = rest.partition(" ")
            state.shared_sums[int(index)] = digest
        elif tag == "manifest":
            state.manifest = rest
        elif tag == "digest":
            state.digest = rest or None
        elif tag == "diff":
            state.differences.append(rest)
        elif tag == "tmplink":
            state.temp_links.append(rest)
        elif tag == "lockdir":
            state.lock = state.lock or {}
        elif tag == "lock":
            key, _, value = rest.partition("=")
            state.lock = {**(state.lock or {}), key: value}
        elif tag == "log":
            state.log.append(rest)
    return state


class _ForgetAfterChanges(BaseStateCallback):
    """Drop a host's cached state once an operation may have changed it.

    Operations declared with `common.wanted_state` say when they changed nothing, or what
    the host looks like after their change; any other operation (pyinfra's own, a hook) is
    assumed to have changed something unknown.
    """

    @staticmethod
    def operation_host_success(state: State, host, op_hash, retry_attempt=0):
        run = run_context(state)
        expected = run.expected.pop((host.name, op_hash), None)
        if expected is not None:
            run.reads[host.name] = expected
        elif (host.name, op_hash) not in run.quiet:
            run.reads.pop(host.name, None)
        run.quiet.discard((host.name, op_hash))

    @staticmethod
    def operation_host_error(state: State, host, op_hash, retry_attempt=0, max_retries=0):
        run = run_context(state)
        run.expected.pop((host.name, op_hash), None)
        run.reads.pop(host.name, None)


@dataclass(frozen=True)
class LockFold:
    """A read that also takes the deploy lock (sh/take_lock.sh, see lock.py)."""

    owner: str  # the owner file's text
    taken: Callable[[DeployState], bool]  # after the read: records the lock if it is ours
    ready: Callable[[], bool] = lambda: True  # may the read take it now (else a plain read)


def fold_lock_into_read(fold: LockFold) -> None:
    """Let the current host's next read of the execute phase take the deploy lock too (one
    command instead of two)."""
    run_context(host.state).lock_fold[host.name] = fold


def read_while_loading(
    target: Any, layout: Layout, sha: str, fold: LockFold | None
) -> DeployState:
    """The deploy root of `target` (a pyinfra Host), read now, while the deploy file loads
    (under `-y`: see lock.read_at_load), taking the deploy lock too with `fold`.

    A read made under the lock (held already, or taken by this read) serves the execute
    phase as a read made there would: nothing else deploys here since it was made, and
    operations that change the host drop it as usual. Any other read is not reused there.
    """
    state = target.state
    run = run_context(state)
    _forget_after_changes(state)
    locked = target.name in run.held
    value = read_deploy_tree(target, layout, sha, owner=fold.owner if fold else None)
    locked = locked or bool(fold and fold.taken(value))
    stage = execute_stage() if locked else state.current_stage
    run.reads[target.name] = ((stage, layout, sha), value)
    return value


def _forget_after_changes(state: State) -> None:
    run = run_context(state)
    if "forget-after-changes" not in run.handlers:
        run.handlers.add("forget-after-changes")
        state.add_callback_handler(_ForgetAfterChanges())


def deploy_state(layout: Layout, sha: str | None) -> DeployState:
    """The current host's deploy root: read once (one remote command), then reused.

    Reused within one run phase (pyinfra prepares, then executes) until an operation changes
    something on the host. `sha` is the release to check in depth (manifest, shared paths);
    None when the caller needs nothing about a release (the lock, the links): then a state
    read for any release will do. Callers must not modify the returned object.
    """
    state = host.state
    run = run_context(state)
    _forget_after_changes(state)
    key = (state.current_stage, layout, sha)
    cached = run.reads.get(host.name)
    if cached and (cached[0] == key or (sha is None and cached[0][:2] == key[:2])):
        return cached[1]
    if sha is None:
        sha = NO_RELEASE
        key = (*key[:2], sha)
    fold = None if preparing(state) else run.lock_fold.pop(host.name, None)
    if fold and not fold.ready():
        fold = None
    value = read_deploy_tree(host, layout, sha, owner=fold.owner if fold else None)
    if fold:
        fold.taken(value)
    run.reads[host.name] = (key, value)
    return value


def read_deploy_tree(
    target: Any, layout: Layout, sha: str, owner: str | None = None
) -> DeployState:
    """One DeployTree read of `target` (a pyinfra Host), uncached."""
    return target.get_fact(
        DeployTree,
        root=layout.root,
        sha=sha,
        docroot=layout.docroot,
        shared_dirs=list(layout.shared_dirs),
        shared_files=list(layout.shared_files),
        **({"writable_dirs": list(layout.writable_dirs)} if layout.writable_dirs else {}),
        meta=META_DIR,
        marker=MARKER,
        manifest=MANIFEST,
        **({"owner": owner} if owner is not None else {}),
    )
