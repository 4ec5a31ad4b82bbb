"""What a deploy or rollback changes on a host, in commits and files, read from the source.

Pure apart from running `git` in the client's source checkout on this machine (never on a
host): the dry run says it per host, the webhook's message carries it. Release names may
carry a content digest (`<sha12>-<digest8>`); only the sha part is a commit.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .layout import RELEASES_DIR

MAX_LISTED = 20  # commits named in one line; the rest are counted


@dataclass(frozen=True)
class Pending:
    """The commits and files between the live release and the one going live on a host."""

    live: str | None  # the release live now (None: first release on the host)
    release: str  # the release going live
    known: bool = False  # the source has both commits (else only the names are known)
    commits: tuple[str, ...] = ()  # `git log --oneline`, newest first
    undone: bool = False  # the new release is older: these commits are left (a rollback)
    files: dict[str, list[str]] = field(default_factory=dict)  # added/changed/removed -> paths

    @property
    def counts(self) -> dict[str, int]:
        return {kind: len(self.files.get(kind, [])) for kind in ("added", "changed", "removed")}

    def commits_text(self) -> str:
        """e.g. `2 commits since releases/<live>: abc1234 Fix; def5678 Add`."""
        if self.live is None:
            return f"first release on this host: {RELEASES_DIR}/{self.release}"
        if not self.known:
            return (
                f"{RELEASES_DIR}/{self.live} -> {RELEASES_DIR}/{self.release}: commits unknown "
                "(the source does not have both commits)"
            )
        n = len(self.commits)
        what = f"{n} commit{'s' if n != 1 else ''}"
        how = (
            f"undone (back from {RELEASES_DIR}/{self.live})"
            if self.undone
            else (f"since {RELEASES_DIR}/{self.live}")
        )
        listed = "; ".join(self.commits[:MAX_LISTED])
        more = f"; and {n - MAX_LISTED} more" if n > MAX_LISTED else ""
        return f"{what} {how}" + (f": {listed}{more}" if n else "")

    def files_text(self) -> str | None:
        """e.g. `files: 1 added, 2 changed, 0 removed (git diff a..b in the source; ...)`."""
        if self.live is None or not self.known:
            return None
        c = self.counts
        return (
            f"files: {c['added']} added, {c['changed']} changed, {c['removed']} removed "
            f"(git diff {sha_of(self.live)}..{sha_of(self.release)} in the source; build "
            "output not compared)"
        )

    def path_lines(self) -> list[str]:
        marks = {"added": "+", "changed": "~", "removed": "-"}
        return [f"{marks[k]} {p}" for k in marks for p in self.files.get(k, [])]

    def as_json(self) -> dict[str, Any]:
        return {
            "live": self.live,
            "release": self.release,
            "commits": list(self.commits),
            "undone": self.undone,
            "files": self.counts if self.known and self.live else None,
        }


def sha_of(release: str) -> str:
    """The commit part of a release name (`<sha>` or `<sha>-<digest>`)."""
    return release.partition("-")[0]


def _git(source: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed argv, no shell
        ["git", "-C", str(source), *args], capture_output=True, text=True, check=False
    )


def _commits(source: Path, *shas: str) -> list[str] | None:
    """The full ids of `shas`' commits, or None if any is not a commit of `source`."""
    found = _git(source, "rev-parse", *(f"{sha}^{{commit}}" for sha in shas))
    return found.stdout.split() if found.returncode == 0 else None


def pending_changes(source: Path | str | None, live: str | None, release: str) -> Pending:
    """The commits (`git log --oneline <live>..<release>`, limited to the source folder) and
    files (`git diff --name-status`) between `live` and `release`, when `source` is a git
    checkout holding both commits; a rollback (the release is older) lists the commits it
    leaves. Otherwise only the names are known."""
    if live is None or source is None or live == release:
        return Pending(live, release, known=live == release)
    both = _commits(Path(source), sha_of(live), sha_of(release))
    if both is None:
        return Pending(live, release)
    old, new = both
    # One log for both directions: '>' only in the release, '<' only in the live one.
    log = _git(
        Path(source), "log", "--oneline", "--no-decorate", "--left-right", f"{old}...{new}",
        "--", ".",
    )  # fmt: skip
    sides: dict[str, list[str]] = {"<": [], ">": []}
    for line in log.stdout.splitlines():
        sides[line[:1]].append(line[2:])
    commits, undone = sides[">"], False
    if not commits:
        commits, undone = sides["<"], bool(sides["<"])
    diff = _git(Path(source), "diff", "--no-renames", "--name-status", old, new, "--", ".")
    files: dict[str, list[str]] = {"added": [], "changed": [], "removed": []}
    kinds = {"A": "added", "D": "removed"}
    for line in diff.stdout.splitlines():
        status, _, path = line.partition("\t")
        files[kinds.get(status[:1], "changed")].append(path)
    return Pending(live, release, True, tuple(commits), undone, files)


def summary_text(body: dict[str, Any], pending: list[Pending]) -> str:
    """The webhook's one-paragraph `text`: action, release, client, hosts, outcome, commits."""
    client = Path(body.get("client") or "?").stem
    hosts = ", ".join(body["hosts"]) or "no hosts"
    failed = body.get("failed_hosts") or []
    outcome = (
        "succeeded"
        if body["outcome"] == "success"
        else (f"FAILED (failed: {', '.join(failed)})" if failed else "FAILED")
    )
    release = body["release"] or "(no release)"
    text = (
        f"{body['action'].capitalize()} of {client} to {RELEASES_DIR}/{release} on {hosts} "
        f"by {body.get('by', '?')}: {outcome} in {body.get('duration_seconds', 0)} s."
    )
    seen = []
    for p in pending:
        line = p.commits_text()
        if p.live != p.release and line not in seen:
            seen.append(line)
    if seen:
        text += " " + " ".join(s[0].upper() + s[1:] + "." for s in seen)
    return text
