"""The upload set: exactly what a release holds, gathered on this machine before any host is
contacted.

    upload set = the files tracked in the commit (under the source folder)
               + the build output the client declares (`build.output`)
               - shared paths (they live on the hosts)
               - `exclude` patterns

A git-ignored file reaches a host only if `build.output` names it. The set is laid out in a
staging folder (hard links to the work tree where possible, so it costs no copy), which the
upload then mirrors with `rsync --delete`. Two ways to get build output:

* `build.commands` run in a clean export of the commit (`git archive`), never in the work
  tree, so stray local files can't reach the release; the export, pruned to the set, is staged.
* without commands, `build.output` is taken from the work tree as it is (a CI pipeline that
  already built in its workspace).

The release is named after the commit when the set is exactly the commit's files; otherwise
(build output, a dirty work tree under allow_dirty, a source that is not a checkout) the name
carries a digest of the content: `<sha12>-<digest8>`. The full digest is also written into the
release on the host, so a change of the set under the same name (e.g. a new `exclude`) is
rebuilt rather than reported as "no change".
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pyinfra.api.exceptions import PyinfraError

from .layout import CURRENT_LINK
from .release_name import DIGEST_LENGTH, Commit

# Staging folders of this tool under the repository's git dir: same file system as the work
# tree (hard links work), never in the work tree, never committed.
_STAGING_PARENT = "atomic-deploy"
_STAGING_PREFIX = "upload-"
BUILD_OUTPUT_LINES = 40  # of a failing build command, shown in the error


class UploadError(PyinfraError):
    """The upload set can't be made (a failing build, missing output, no docroot)."""


@dataclass(frozen=True)
class UploadSet:
    """The staged upload set and the release name it gets."""

    folder: Path  # the upload's source: the staging folder, or the work tree itself
    name: str  # release name: <sha12> or <sha12>-<digest8>
    digest: str  # sha256 over paths, kinds, modes and contents (hex)
    files: int  # files and links in the set
    not_uploaded: tuple[str, ...]  # shared paths that the commit or build output holds
    # rsync patterns that leave out of `folder` what is not in the set (the work tree's
    # untracked files and shared paths); empty for a staging folder, which holds only the set
    excludes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Spec:
    """What the client file says about the upload (see config.Client)."""

    source: Path
    docroot: str
    shared: tuple[str, ...]  # shared_dirs + shared_files
    exclude: tuple[str, ...] = ()
    build_commands: tuple[str, ...] = ()
    build_output: tuple[str, ...] = ()


GITLINK = "160000"  # git's mode of a submodule


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(  # noqa: S603 - fixed argv, no shell
        ["git", "-C", str(cwd), *args], capture_output=True, check=False, stdin=subprocess.DEVNULL
    )


def _git_out(cwd: Path, *args: str) -> bytes:
    result = _git(cwd, *args)
    if result.returncode != 0:
        raise UploadError(f"git {' '.join(args)} in {cwd} failed: {result.stderr.decode().strip()}")
    return result.stdout


def _under(path: str, prefixes: Iterable[str]) -> str | None:
    """The prefix `path` is (or is inside), else None."""
    for prefix in prefixes:
        if path == prefix or path.startswith(prefix + "/"):
            return prefix
    return None


def _walk(base: Path, rel: str) -> list[str]:
    """Files and links at or under `rel` in `base` (links are not followed)."""
    top = base / rel
    if top.is_symlink() or top.is_file():
        return [rel]
    out = []
    for dirpath, dirnames, filenames in os.walk(top):
        here = Path(dirpath).relative_to(base).as_posix()
        for name in filenames + [d for d in dirnames if Path(dirpath, d).is_symlink()]:
            out.append(name if here == "." else f"{here}/{name}")
    return out


# --------------------------------------------------------------------------- what is tracked


def _index(source: Path) -> dict[str, tuple[str, str]]:
    """Path (relative to `source`) -> (git mode, blob id) of each entry the commit tracks
    there; submodules (gitlinks) have mode 160000."""
    out: dict[str, tuple[str, str]] = {}
    for entry in _git_out(source, "ls-files", "-z", "-s").split(b"\0"):
        if entry:
            meta, _, path = entry.decode().partition("\t")
            mode, blob, _stage = meta.split()
            out[path] = (mode, blob)
    return out


def tracked_files(source: Path, *, dirty: bool) -> dict[str, str | None]:
    """Path (relative to `source`) -> git blob id of each file the commit tracks there.

    With `dirty` (allow_dirty): the work tree as it is, i.e. tracked files that still exist
    plus untracked files that are not ignored, with no known blob id (their content is read).
    Submodules (gitlinks) are left out: `git archive` would not contain them either.
    """
    if dirty:
        raw = _git_out(source, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
        paths = {p.decode() for p in raw.split(b"\0") if p}
        return {p: None for p in sorted(paths) if os.path.lexists(source / p)}
    return {p: blob for p, (mode, blob) in _index(source).items() if mode != GITLINK}


# --------------------------------------------------------------------------- build


def export_commit(source: Path, into: Path) -> None:
    """Extract the commit's files under `source` (HEAD, no work-tree changes) into `into`."""
    prefix = _git_out(source, "rev-parse", "--show-prefix").decode().strip()
    treeish = f"HEAD:{prefix.rstrip('/')}" if prefix else "HEAD"
    archive = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        ["git", "-C", str(source), "archive", "--format=tar", treeish],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    # -m: each file gets the time of this export, not the commit's (whole seconds): rsync's
    # quick check would skip a same-size edit committed within the second of the last one.
    untar = subprocess.run(  # noqa: S603 - fixed argv, no shell
        ["tar", "-x", "-m", "-C", str(into)], stdin=archive.stdout, capture_output=True,
        check=False,
    )  # fmt: skip
    assert archive.stdout is not None
    archive.stdout.close()
    git_err = archive.stderr.read().decode() if archive.stderr else ""
    if archive.wait() != 0 or untar.returncode != 0:
        raise UploadError(f"exporting {treeish} of {source} failed: {git_err or untar.stderr}")


def run_build(commands: tuple[str, ...], cwd: Path, file: Path, sha: str) -> None:
    """Run the client's build commands, in order, in the export; stop at the first failure.

    Each runs with `sh -c` (the client file is the user's own, like a Makefile), with the
    release's sha in ATOMIC_RELEASE. Their output is shown only when one fails.
    """
    env = {**os.environ, "ATOMIC_RELEASE": sha}
    for i, command in enumerate(commands):
        started = time.monotonic()
        print(f"atomic-deploy: build: {command}", file=sys.stderr, flush=True)
        result = subprocess.run(  # noqa: S602 - the client's own build command
            command, shell=True, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            lines = result.stdout.decode(errors="replace").splitlines()[-BUILD_OUTPUT_LINES:]
            raise UploadError(
                f"{file}: build.commands[{i}] failed (exit {result.returncode}) after "
                f"{time.monotonic() - started:.1f} s, so no host was touched: {command}\n    "
                + "\n    ".join(lines or ["(no output)"])
            )


# --------------------------------------------------------------------------- staging


def _staging_dir(source: Path) -> Path:
    """A new, empty staging folder: under the repo's git dir if possible (hard links), else
    in the temp dir. Leftovers of runs that were killed are removed first.
    """
    common = _git(source, "rev-parse", "--path-format=absolute", "--git-common-dir")
    if common.returncode == 0:
        parent = Path(common.stdout.decode().strip()) / _STAGING_PARENT
        try:
            parent.mkdir(mode=0o700, exist_ok=True)
            _remove_stale(parent)
            return Path(tempfile.mkdtemp(prefix=f"{_STAGING_PREFIX}{os.getpid()}-", dir=parent))
        except OSError:
            pass
    return Path(tempfile.mkdtemp(prefix=f"atomic-deploy-{_STAGING_PREFIX}"))


def _remove_stale(parent: Path) -> None:
    for old in parent.glob(f"{_STAGING_PREFIX}*"):
        pid = old.name.removeprefix(_STAGING_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _place(src: Path, dst: Path) -> None:
    """dst becomes src: a hard link (no copy, same mode and mtime), else a copy."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)


def _copy_dir_modes(base: Path, staging: Path) -> None:
    """Folders of the staging get the modes of the source's (never wider than the source)."""
    for dirpath, _dirnames, _files in os.walk(staging):
        rel = Path(dirpath).relative_to(staging)
        original = base / rel
        if original.is_dir() and not original.is_symlink():
            os.chmod(dirpath, stat.S_IMODE(original.stat().st_mode))


def _rsync_selection(folder: Path, exclude: tuple[str, ...]) -> list[str]:
    """Files and links of `folder` that rsync sends with these exclude patterns.

    rsync's own matching decides, so the set is what the upload's patterns mean. rsync
    prints a name's control characters (a newline, a tab) as `\\#ooo` (octal), and a
    backslash that would read as such an escape the same way; -8 keeps other bytes as they
    are, so decoding the escapes gives the exact names back.
    """
    argv = ["rsync", "-r", "-l", "-8", "--dry-run", "--out-format=%n", "--exclude=.git"]
    argv += [f"--exclude={p}" for p in exclude]
    argv += ["--", f"{folder}/", "/nonexistent/atomic-deploy-selection/"]
    result = subprocess.run(  # noqa: S603 - argv list, no shell
        argv, capture_output=True, stdin=subprocess.DEVNULL, check=False
    )
    if result.returncode != 0:
        stderr = result.stderr.decode(errors="replace").strip()
        raise UploadError(f"rsync could not list the upload set: {stderr}")
    names = []
    for line in result.stdout.split(b"\n"):
        if line and not line.endswith(b"/"):
            raw = re.sub(rb"\\#([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), line)
            names.append(os.fsdecode(raw))
    return names


def _prune(folder: Path, keep: set[str]) -> None:
    """Remove every file and link of `folder` not in `keep`, then the empty folders left."""
    for rel in _walk(folder, "."):
        if rel not in keep:
            (folder / rel).unlink()
    for dirpath, _dirnames, _files in sorted(os.walk(folder), reverse=True):
        if dirpath != str(folder) and not os.listdir(dirpath):
            os.rmdir(dirpath)


# --------------------------------------------------------------------------- identity


def _blob_id(path: Path) -> str:
    """git's id of the file's content (so tracked files need not be read again)."""
    h = hashlib.sha1(usedforsecurity=False)
    h.update(f"blob {path.stat().st_size}\0".encode())
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def content_digest(
    folder: Path,
    paths: list[str],
    known: dict[str, str | None],
    kinds: dict[str, str | None] | None = None,
) -> str:
    """sha256 over each path, its kind (file, executable, link) and content (git blob id or
    link target). `known` gives blob ids already known (clean tracked files); `kinds` gives
    kinds already known from git's index (no stat of each file: 30,000 stats take ~0.1 s).
    """
    h = hashlib.sha256()
    for rel in sorted(paths):
        kind = kinds.get(rel) if kinds is not None else None
        content = known.get(rel)
        if kind is None or kind == "l" or content is None:
            full = os.path.join(folder, rel)
            if kind is None:
                st = os.lstat(full)
                kind = "l" if stat.S_ISLNK(st.st_mode) else "x" if st.st_mode & 0o111 else "f"
            content = os.readlink(full) if kind == "l" else content or _blob_id(Path(full))
        h.update(f"{rel}\0{kind}\0{content}\n".encode())
    return h.hexdigest()


# --------------------------------------------------------------------------- the set


# A work-tree upload leaves files out by rsync patterns, where these characters are special.
_PATTERN_CHARS = re.compile(r"[*?\[\\\n\r]")
_KIND_OF_MODE = {"100644": "f", "100755": "x", "120000": "l"}  # git's modes -> digest kinds
MAX_WORK_TREE_EXCLUDES = 1000  # more: stage instead (a long argv, and slow matching)


def _work_tree_set(spec: Spec, commit: Commit, file: Path) -> UploadSet | None:
    """The upload set of a clean commit without build output or exclude patterns, sent from
    the work tree itself with rsync patterns for what is not tracked: no staging (about a
    second for 6,000 files). None where a name or the number of patterns needs the staging.

    Exact: the work tree is clean (no untracked file that git does not ignore), so the work
    tree minus git's ignored paths is the commit's files; shared paths and submodules are
    left out too.
    """
    index = _index(spec.source)
    tracked = {p: blob for p, (mode, blob) in index.items() if mode != GITLINK}
    ignored = _git_out(
        spec.source, "ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--directory"
    )
    left_out = [p.decode() for p in ignored.split(b"\0") if p]
    left_out += [p for p, (mode, _) in index.items() if mode == GITLINK]
    left_out += list(spec.shared)
    if len(left_out) > MAX_WORK_TREE_EXCLUDES or _PATTERN_CHARS.search(
        "\0".join([*left_out, *tracked])
    ):
        return None
    shared_of = {p: _under(p, spec.shared) for p in tracked}
    candidates = [p for p, shared in shared_of.items() if not shared]
    not_uploaded = sorted({shared for shared in shared_of.values() if shared})
    _check_docroot(spec, candidates, file)
    # A clean tree matches the index, modes included, unless git ignores the executable bit.
    modes_tracked = _git(spec.source, "config", "--bool", "core.fileMode").stdout != b"false\n"
    kinds = {p: _KIND_OF_MODE.get(index[p][0]) for p in candidates}
    digest = content_digest(spec.source, candidates, tracked, kinds if modes_tracked else None)
    excludes = tuple("/" + p for p in left_out)  # anchored at the source; dirs end in "/"
    return UploadSet(spec.source, commit.sha, digest, len(candidates), tuple(not_uploaded),
                     excludes)  # fmt: skip


def _check_docroot(spec: Spec, selected: list[str], file: Path) -> None:
    if not any(_under(p, [spec.docroot]) for p in selected):
        raise UploadError(
            f"{file}: docroot: '{spec.docroot}' is not in the upload set (the commit's files"
            f"{' and build.output' if spec.build_output else ''} under {spec.source}), so "
            f"{spec.docroot} -> {CURRENT_LINK}/{spec.docroot} would point at nothing. Set docroot "
            "to the folder the web server serves (e.g. web or public)"
        )


def prepare(spec: Spec, commit: Commit, file: Path) -> UploadSet:
    """Gather the upload set; raise UploadError (before any host is contacted).

    A clean commit without build output or excludes is sent from the work tree
    (`_work_tree_set`); anything else is staged, and the staging folder is removed when this
    process exits.
    """
    built = bool(spec.build_commands)
    if commit.git and not commit.dirty and not built and not spec.build_output:
        if not spec.exclude:
            fast = _work_tree_set(spec, commit, file)
            if fast is not None:
                return fast
    staging = _staging_dir(spec.source)
    _remove_at_exit(staging)
    if built:
        export_commit(spec.source, staging)
        known: dict[str, str | None] = {}
        tracked = dict.fromkeys(_walk(staging, "."))
        run_build(spec.build_commands, staging, file, commit.sha)
        base = staging
    elif commit.git:
        tracked = tracked_files(spec.source, dirty=commit.dirty)
        known = {} if commit.dirty else tracked
        base = spec.source
    else:  # a plain folder, named with --data release: all of it
        tracked = {p: None for p in _walk(spec.source, ".") if not _under(p, [".git"])}
        known, base = {}, spec.source

    candidates = set(tracked)
    for i, output in enumerate(spec.build_output):
        if not os.path.lexists(base / output):
            where = "the build's export" if built else f"the work tree ({spec.source})"
            hint = "" if built else ": build it first (e.g. composer install) or fix the path"
            raise UploadError(
                f"{file}: build.output[{i}]: {output} does not exist in {where}{hint}"
            )
        candidates.update(_walk(base, output))
    not_uploaded = sorted({s for p in candidates if (s := _under(p, spec.shared))})
    candidates = {p for p in candidates if not _under(p, spec.shared)}

    if built:
        _prune(staging, candidates)
    else:
        for rel in candidates:
            _place(base / rel, staging / rel)
        _copy_dir_modes(base, staging)
    selected = _rsync_selection(staging, spec.exclude)
    if len(selected) != len(candidates):
        _prune(staging, set(selected))
    _check_docroot(spec, selected, file)
    digest = content_digest(staging, selected, known)
    exact = commit.git and not commit.dirty and not built and not spec.build_output
    name = commit.sha if exact else f"{commit.sha}-{digest[:DIGEST_LENGTH]}"
    return UploadSet(staging, name, digest, len(selected), tuple(not_uploaded))


def _remove_at_exit(folder: Path) -> None:
    import atexit

    atexit.register(shutil.rmtree, folder, ignore_errors=True)
