"""The release name: the git sha of the source checkout, checked before any host is contacted."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from pyinfra.api.exceptions import PyinfraError

SHA_RE = re.compile(r"^[0-9a-f]{7,40}\Z")  # \Z: "$" would allow a final "\n"
# Names are shortened to this many hex digits (as `git log --abbrev=12` does): unambiguous
# in practice, and short enough to read in paths and output.
SHA_LENGTH = 12


class ReleaseError(PyinfraError):
    """The release name is missing, malformed or does not match the source."""


def check_release_value(value: object, origin: str) -> str:
    """Return `value` as a release name (7-40 lowercase hex digits) or raise a ReleaseError.

    pyinfra turns `--data release=1234e56` into the float 1.234e+59 and `--data release=1234567`
    into an int, so a non-string gets an explanation of how to quote it.
    """
    if isinstance(value, bool) or isinstance(value, int | float):
        raise ReleaseError(
            f"{origin}: the release arrived as {type(value).__name__} {value!r}, not as text: "
            "pyinfra converts --data values that look like numbers or booleans. Quote it as JSON: "
            "--data 'release=\"1234e56\"'"
        )
    if not isinstance(value, str) or not SHA_RE.match(value):
        raise ReleaseError(
            f"{origin}: {value!r} is not a git sha (expected 7 to 40 characters 0-9a-f)"
        )
    return value


def _git(source: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed argv, no shell
        ["git", "-C", str(source), *args], capture_output=True, text=True, check=False
    )


def resolve_release(source: Path, *, allow_dirty: bool, explicit: object = None) -> str:
    """The release name for `source`: its HEAD, shortened, unless `explicit` names one.

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
        return wanted
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
    if not allow_dirty:
        dirty = _git(source, "status", "--porcelain", "--untracked-files=normal", "--", ".")
        if dirty.stdout.strip():
            changed = [line[3:] for line in dirty.stdout.splitlines()][:5]
            raise ReleaseError(
                f"source {source} has uncommitted changes ({', '.join(changed)}): commit them, "
                "or set allow_dirty: true (or --data allow_dirty=true) to deploy the work tree "
                "as it is"
            )
    return head_sha[:SHA_LENGTH]
