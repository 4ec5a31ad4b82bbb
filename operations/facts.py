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
from pyinfra.api import FactBase, QuoteString, State, StringCommand
from pyinfra.api.state import BaseStateCallback

from .context import run_context
from .layout import MANIFEST, MARKER, META_DIR, NO_RELEASE, Layout
from .manifest import listing_command
from .pyinfra_adapter import assign, preparing

# Runs under `sh -c` on the host. Inputs arrive as shell variables set (quoted) before it:
# r (root, empty = $HOME), sha, docroot, meta, marker, manifest, loglines, a `listing` function
# (manifest.py), and the shared paths as "$@" ("d:path" / "f:path"). Shared paths are
# reported by their index in "$@", so odd characters in them can't confuse parsing.
_SCRIPT = r"""
[ -n "$r" ] || r=$HOME
printf 'root %s\n' "$r"
if command -v rsync >/dev/null 2>&1; then echo 'rsync yes'; else echo 'rsync no'; fi
if [ ! -e "$r" ] && [ ! -L "$r" ]; then echo 'rootstate missing'; exit 0; fi
if [ ! -d "$r" ]; then echo 'rootstate notdir'; exit 0; fi
cd "$r" 2>/dev/null || { echo 'rootstate unreadable'; exit 0; }
if [ -w . ]; then echo 'rootstate ok'; else echo 'rootstate readonly'; fi
kind() {
  if [ -L "$1" ]; then printf 'link %s\n' "$(readlink "$1")"
  elif [ -d "$1" ]; then
    if [ -z "$(ls -A "$1" 2>/dev/null)" ]; then echo emptydir; else echo dir; fi
  elif [ -f "$1" ]; then if [ -s "$1" ]; then echo file; else echo emptyfile; fi
  elif [ -e "$1" ]; then echo other
  else echo missing
  fi
}
for d in deploy-cache releases shared "$meta"; do
  [ -d "$d" ] && [ ! -L "$d" ] && printf 'dir %s\n' "$d"
done
printf 'top current %s\n' "$(kind current)"
printf 'top docroot %s\n' "$(kind "$docroot")"
for t in .*.atomic-deploy-tmp; do [ -L "$t" ] && printf 'tmplink %s\n' "$t"; done
if [ -d "$meta/lock" ]; then
  echo 'lockdir yes'
  [ -f "$meta/lock/owner" ] && head -c 2000 "$meta/lock/owner" | sed 's/^/lock /'
fi
nl=$(printf '\nx'); nl=${nl%x}
for e in releases/* releases/.[!.]*; do
  [ -e "$e" ] || [ -L "$e" ] || continue
  n=${e#releases/}
  case $n in *"$nl"*) n=$(printf '%s' "$n" | tr '\n' '?');; esac
  if [ -L "$e" ]; then t=link; elif [ -d "$e" ]; then t=dir; else t=other; fi
  m=-
  if [ "$t" = dir ] && [ -f "$e/$marker" ]; then m=$(head -n 1 "$e/$marker" | tr -dc 0-9a-f-); fi
  printf 'entry %s %s %s\n' "$t" "${m:--}" "$n"
done
rel="releases/$sha"
if [ -d "$rel" ] && [ ! -L "$rel" ] && [ -f "$rel/$marker" ]; then
  printf 'digest %s\n' "$(sed -n 2p "$rel/$marker" | tr -dc 0-9a-f)"
  if [ ! -f "$rel/$manifest" ]; then echo 'manifest missing'
  elif (cd "$rel" && listing) | cmp -s - "$rel/$manifest"; then echo 'manifest ok'
  else
    echo 'manifest changed'
    (cd "$rel" && listing) | diff "$rel/$manifest" - | grep '^[<>]' | head -n 50 | sed 's/^/diff /'
  fi
fi
i=0
for p in "$@"; do
  path=${p#?:}
  printf 'shared %s %s\n' "$i" "$(kind "shared/$path")"
  [ -d "shared/$path" ] && printf 'sharedmeta %s %s\n' "$i" "$(stat -c '%a %G' "shared/$path")"
  # A shared file's sha256 (never its content): shared_sources compares it with the local file.
  case $p in f:*)
    if [ -f "shared/$path" ] && [ ! -L "shared/$path" ] && s=$(sha256sum < "shared/$path"); then
      printf 'sharedsum %s %s\n' "$i" "${s%% *}"
    fi;;
  esac
  if [ -d "$rel" ] && [ ! -L "$rel" ]; then
    k=$(kind "$rel/$path")
    printf 'rel %s %s\n' "$i" "$k"
    # Would moving the release's content into shared/ overwrite anything there?
    case $k in
      dir) (cd "$rel/$path" && find . ! -type d -exec sh -c \
             'for f; do [ -e "$0/$f" ] || [ -L "$0/$f" ] && exit 1; done; exit 0' \
             "$r/shared/$path" {} +) && m=yes || m=no
           printf 'relmerge %s %s\n' "$i" "$m";;
      file) case $(kind "shared/$path") in missing|emptyfile) m=yes;; *) m=no;; esac
           printf 'relmerge %s %s\n' "$i" "$m";;
    esac
  fi
  i=$((i + 1))
done
[ -f "$meta/log" ] && tail -n "$loglines" "$meta/log" | sed 's/^/log /'
exit 0
"""
LOG_LINES = 1000  # how much of the deploy log a read brings back (history, prune order)


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
    shared: list[str] = field(default_factory=list)  # kind of shared/<path>, by index
    in_release: list[str] = field(default_factory=list)  # kind of releases/<sha>/<path>
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


# Run before _SCRIPT when the read also takes the deploy lock (see `fold_lock_into_read`), with
# $owner set to the lock's owner file. Only where the deploy can go on without creating
# anything first: the root and .atomic-deploy/ exist, the host passes the preflight checks
# (rsync, `current`/docroot not real folders or files, releases/<sha> absent or complete);
# otherwise it does nothing and the lock is taken by its own command after preflight.
# mkdir is atomic: of two concurrent deploys only one gets it; the read that follows
# reports the lock's owner either way.
_TAKE_LOCK = r"""
( [ -n "$r" ] || r=$HOME
  cd "$r" 2>/dev/null && [ -w . ] && [ -d "$meta" ] && [ ! -L "$meta" ] || exit 0
  command -v rsync >/dev/null 2>&1 || exit 0
  for x in current "$docroot"; do [ -L "$x" ] || [ ! -e "$x" ] || exit 0; done
  if [ -e "releases/$sha" ] || [ -L "releases/$sha" ]; then
    [ -d "releases/$sha" ] && [ ! -L "releases/$sha" ] && [ -f "releases/$sha/$marker" ] || exit 0
  fi
  mkdir "$meta/lock" 2>/dev/null || exit 0
  (umask 077 && printf %s "$owner" > "$meta/lock/owner") || rm -rf "$meta/lock"
)
"""


class DeployTree(FactBase):
    """The state of a deploy root: layout dirs, links, releases, shared paths, deploy log."""

    def command(
        self, root, sha, docroot, shared_dirs, shared_files, meta, marker, manifest, owner=None
    ):
        assigns = [
            StringCommand(assign(name, value), ";")
            for name, value in (
                ("r", root or ""),
                ("sha", sha),
                ("docroot", docroot),
                ("meta", meta),
                ("marker", marker),
                ("manifest", manifest),
                ("loglines", str(LOG_LINES)),
            )
        ]
        paths = [QuoteString(f"d:{p}") for p in shared_dirs]
        paths += [QuoteString(f"f:{p}") for p in shared_files]
        listing = listing_command([*shared_dirs, *shared_files])
        take = []
        if owner is not None:  # this read also takes the deploy lock
            take = [StringCommand(assign("owner", owner), ";"), _TAKE_LOCK]
        return StringCommand(
            *assigns, *take, "listing()", "{", listing, ";", "}", ";", "set", "--", *paths, ";",
            _SCRIPT,
        )  # fmt: skip

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
        elif tag == "dir":
            state.dirs.add(rest)
        elif tag == "top":
            which, _, kind = rest.partition(" ")
            setattr(state, which, kind)
        elif tag == "entry":
            kind, marker, name = rest.split(" ", 2)
            state.entries[name] = Entry(name, kind, None if marker == "-" else marker)
        elif tag in ("shared", "rel"):
            index, _, kind = rest.partition(" ")
            target = state.shared if tag == "shared" else state.in_release
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


def fold_lock_into_read(owner: str, taken: Callable[[DeployState], None]) -> None:
    """Let the current host's next read of the execute phase take the deploy lock too (one
    command instead of two)."""
    run_context(host.state).lock_fold[host.name] = (owner, taken)


def deploy_state(layout: Layout, sha: str | None) -> DeployState:
    """The current host's deploy root: read once (one remote command), then reused.

    Reused within one run phase (pyinfra prepares, then executes) until an operation changes
    something on the host. `sha` is the release to check in depth (manifest, shared paths);
    None when the caller needs nothing about a release (the lock, the links): then a state
    read for any release will do. Callers must not modify the returned object.
    """
    state = host.state
    run = run_context(state)
    if "forget-after-changes" not in run.handlers:
        run.handlers.add("forget-after-changes")
        state.add_callback_handler(_ForgetAfterChanges())
    key = (state.current_stage, layout, sha)
    cached = run.reads.get(host.name)
    if cached and (cached[0] == key or (sha is None and cached[0][:2] == key[:2])):
        return cached[1]
    if sha is None:
        sha = NO_RELEASE
        key = (*key[:2], sha)
    fold = None if preparing(state) else run.lock_fold.pop(host.name, None)
    value = read_deploy_tree(host, layout, sha, owner=fold[0] if fold else None)
    if fold:
        fold[1](value)
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
        meta=META_DIR,
        marker=MARKER,
        manifest=MANIFEST,
        **({"owner": owner} if owner is not None else {}),
    )
