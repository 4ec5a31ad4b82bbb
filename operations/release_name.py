"""The release name: the git sha of the source checkout, checked before any host is contacted.

A release made of exactly a commit's files is named after the commit (12 hex digits). One that
holds anything else (build output, a dirty work tree) carries a digest of its content too:
`<sha12>-<digest8>` (see upload.py), so one name always means one content.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pyinfra.api.exceptions import PyinfraError

# A release name: a sha, optionally followed by a content digest. \Z: "$" would allow a final
# "\n". Every name that reaches a shell or a path is checked against it.
RELEASE_NAME = r"[0-9a-f]{7,40}(?:-[0-9a-f]{8})?"  # for patterns of names that embed one
RELEASE_RE = re.compile(rf"^{RELEASE_NAME}\Z")
# Names are shortened to this many hex digits (as `git log --abbrev=12` does): unambiguous
# in practice, and short enough to read in paths and output.
SHA_LENGTH = 12
DIGEST_LENGTH = 8  # hex digits of the content digest in a release name


class ReleaseError(PyinfraError):
    """The release name is missing, malformed or does not match the source."""


def check_release_value(value: object, origin: str) -> str:
    """Return `value` as a release name (7-40 lowercase hex digits, optionally `-` and an
    8-digit content digest) or raise a ReleaseError.

    pyinfra turns `--data release=1234e56` into the float 1.234e+59 and `--data release=1234567`
    into an int, so a non-string gets an explanation of how to quote it.
    """
    if isinstance(value, bool) or isinstance(value, int | float):
        raise ReleaseError(
            f"{origin}: the release arrived as {type(value).__name__} {value!r}, not as text: "
            "pyinfra converts --data values that look like numbers or booleans. Quote it as JSON: "
            "--data 'release=\"1234e56\"'"
        )
    if not isinstance(value, str) or not RELEASE_RE.match(value):
        raise ReleaseError(
            f"{origin}: {value!r} is not a git sha (expected 7 to 40 characters 0-9a-f, "
            "optionally followed by '-' and 8 of them: a release's content digest)"
        )
    return value


def _git(source: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed argv, no shell
        ["git", "-C", str(source), *args], capture_output=True, text=True, check=False
    )


@dataclass(frozen=True)
class Commit:
    """What the source is: the commit to deploy (shortened) and the state of its work tree."""

    sha: str  # SHA_LENGTH hex digits; the explicit name for a source that is not a checkout
    git: bool = True  # False: a plain folder, named with --data release
    dirty: bool = False  # uncommitted changes (only with allow_dirty)


def resolve_release(source: Path, *, allow_dirty: bool, explicit: object = None) -> Commit:
    """The commit to deploy from `source`: its HEAD, unless `explicit` names one.

    Refuses a dirty work tree unless `allow_dirty` (what would be uploaded is not that commit),
    and an explicit sha that is not HEAD of the checkout (the upload is the work tree, so the
    name would lie). A source that is not a git checkout needs an explicit name.
    """
    wanted = None if explicit is None else check_release_value(explicit, "--data release")
    if _git(source, "rev-parse", "--is-inside-work-tree").returncode != 0:
        if wanted is None:
            raise ReleaseError(
                f"source {source} is not a git checkout: the release is named after its HEAD. "
                "Deploy from a checkout, or name the release with --data 'release=\"<sha>\"'"
            )
        return Commit(wanted.split("-")[0], git=False, dirty=True)
    head = _git(source, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    if head.returncode != 0:
        raise ReleaseError(f"source {source} has no commit yet: commit the site first")
    head_sha = head.stdout.strip()
    if wanted is not None:
        named = _git(source, "rev-parse", "--verify", "--quiet", f"{wanted}^{{commit}}")
        if named.returncode != 0:
            raise ReleaseError(f"--data release: {wanted} is not a commit of {source}")
        if named.stdout.strip() != head_sha:
            raise ReleaseError(
                f"--data release: {wanted} is not the checked-out commit of {source} "
                f"(HEAD is {head_sha[:SHA_LENGTH]}); the upload is the work tree, so check out "
                f"{wanted} first"
            )
    status = _git(source, "status", "--porcelain", "--untracked-files=normal", "--", ".")
    dirty = bool(status.stdout.strip())
    if dirty and not allow_dirty:
        changed = [line[3:] for line in status.stdout.splitlines()][:5]
        raise ReleaseError(
            f"source {source} has uncommitted changes ({', '.join(changed)}): commit them, "
            "or set allow_dirty: true (or --data allow_dirty=true) to deploy the work tree "
            "as it is (the release name then carries a digest of its content)"
        )
    return Commit(head_sha[:SHA_LENGTH], dirty=dirty)
