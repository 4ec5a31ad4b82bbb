"""Pure parts of issue 14: short-sha resolution, status drift and order with `current` missing,
the commits between two releases (real git in a temp repo) and the webhook's summary text."""

from __future__ import annotations

import subprocess
from pathlib import Path

from fakes import FakeHost
from pyinfra.api.state import StateStage
from pyinfra.context import ctx_host, ctx_state

from operations.common import refuse
from operations.database import DumpFile, DumpFolder
from operations.deploy_log import line as log_line
from operations.facts import parse_deploy_tree
from operations.layout import Layout
from operations.pending import Pending, pending_changes, sha_of, summary_text
from operations.states.hooks import _previous
from operations.states.rollback import match_release
from operations.states.status import drift, dump_drift, format_text, live_order, report

A, B, C = "aaaaaaa00001", "aaaaaaa00002-0123abcd", "cccccccccccc"


def test_a_unique_short_sha_names_its_release():
    names = [A, B, C]
    assert match_release(names, "ccccccc") == (C, "")
    assert match_release(names, C + "0" * 28) == (C, "")  # a full 40-digit sha
    assert match_release(names, "aaaaaaa00002") == (B, "")  # <sha12>-<digest8> by its sha
    assert match_release(names, B) == (B, "")
    assert match_release(names, "aaaaaaa00002-ffffffff")[0] is None  # another content


def test_an_ambiguous_short_sha_lists_the_candidates():
    target, why = match_release([A, B, C], "aaaaaaa")
    assert target is None
    assert why == f"aaaaaaa matches 2 releases on this host ({A}, {B}): name one with more digits"


def test_an_unknown_sha_gets_the_closest_names_or_the_releases_there():
    _, why = match_release([A, C], "aaaaaab00001")
    assert (
        why == f"releases/aaaaaab00001 is not a complete release on this host (did you mean {A}?)"
    )
    _, why = match_release([A, C], "0123456")
    assert why.endswith(f"(releases here: {A}, {C})")
    assert match_release([], "0123456")[1].endswith("(releases here: none)")


def test_a_refusal_while_preparing_is_one_error_line_and_a_failed_host():
    fake = FakeHost(None, StateStage.Prepare, name="web2")
    with ctx_state.use(fake.state), ctx_host.use(fake):
        assert list(refuse("cannot roll back: no")) == []  # no exception, no command
    assert fake.logged == ["cannot roll back: no"]
    assert fake in fake.state.failed_hosts
    executing = FakeHost(None, StateStage.Execute, name="web2")
    with ctx_state.use(executing.state), ctx_host.use(executing):
        [command] = refuse("cannot roll back: no")
    assert command.get_raw_value().endswith("exit 1")


LAYOUT = Layout("/srv/s", "htdocs", ("cache", "content", "storage"), ())
SHARED_OK = [f"shared {i} dir" for i in range(3)]
LINKS_OK = [f"rel {i} link ../../shared/{p}" for i, p in enumerate(("cache", "content", "storage"))]


def _state(current: str, events: list[tuple[str, str, str]], extra: list[str] = ()):
    releases = [A, C, "bbbbbbbbbbbb"]
    return parse_deploy_tree(
        ["root /srv/s", "rootstate ok", f"top current {current}",
         "top docroot link current/htdocs", *[f"entry dir {r} {r}" for r in releases],
         "manifest ok", *SHARED_OK, *LINKS_OK,
         *[f"log {log_line(e, r, 'me@box', d)}" for e, r, d in events], *extra]
    )  # fmt: skip


EVENTS = [
    ("switch", A, "from -"),
    ("switch", "bbbbbbbbbbbb", f"from {A}"),
    ("switch", C, "from bbbbbbbbbbbb"),
    ("rollback", A, f"named; left {C}"),
    ("populated", "bbbbbbbbbbbb", ""),  # rebuilt later: newer use, but not live since
]


def test_status_orders_releases_by_when_they_were_live():
    state = _state(f"link releases/{A}", EVENTS)
    assert live_order(state) == [A, C, "bbbbbbbbbbbb"]
    data = report("web1", state, LAYOUT)
    assert data["previous"] == C and data["drift"] == []


def test_status_with_current_missing_checks_the_last_live_release():
    state = _state("missing", EVENTS, ["shared 1 missing"])
    data = report("web1", state, LAYOUT)
    assert data["live"] is None and data["last_live"] == A
    assert data["previous"] == C  # not A: the last live one is not "previous"
    assert [r["release"] for r in data["releases"]] == [A, C, "bbbbbbbbbbbb"]
    assert data["drift"] == [
        f"current is missing (last live: {A})",
        "shared dir shared/content is missing",
    ]
    text = format_text(data)
    assert f"live: none (last live: releases/{A})" in text
    assert f"releases, last live first: {A}, {C} (previous), bbbbbbbbbbbb" in text


def test_status_names_current_elsewhere_and_too_many_releases():
    state = _state(f"link releases/{C}", EVENTS)
    found = drift(state, LAYOUT, keep_releases=1)
    assert f"current -> releases/{C}, but the deploy log last made releases/{A} live" in found
    assert "more releases than keep_releases (1): the next deploy prunes bbbbbbbbbbbb" in found


def test_after_rollback_hooks_see_the_release_left():
    state = _state(f"link releases/{A}", EVENTS[:4])
    assert _previous(state, A) == C


def _git(repo: Path, *args: str) -> str:
    argv = ["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", "-C", str(repo), *args]
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


def test_pending_changes_from_git(tmp_path: Path):
    repo = tmp_path / "site"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "a.txt").write_text("1\n")
    (repo / "gone.txt").write_text("x\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "first")
    old = _git(repo, "rev-parse", "HEAD")[:12]
    (repo / "a.txt").write_text("2\n")
    (repo / "new.txt").write_text("n\n")
    (repo / "gone.txt").unlink()
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "second")
    new = _git(repo, "rev-parse", "HEAD")[:12]
    short = _git(repo, "log", "--format=%h", "-1")

    ahead = pending_changes(repo, old, f"{new}-0123abcd")  # a digest suffix: the sha part
    assert ahead.known and ahead.commits == (f"{short} second",) and not ahead.undone
    assert ahead.counts == {"added": 1, "changed": 1, "removed": 1}
    assert ahead.commits_text() == f"1 commit since releases/{old}: {short} second"
    assert ahead.files_text().startswith(f"files: 1 added, 1 changed, 1 removed (git diff {old}..")
    assert ahead.path_lines() == ["+ new.txt", "~ a.txt", "- gone.txt"]

    back = pending_changes(repo, new, old)
    assert back.undone and back.commits_text().startswith(
        f"1 commit undone (back from releases/{new})"
    )

    unknown = pending_changes(repo, "abcdef123456", new)
    assert not unknown.known and "commits unknown" in unknown.commits_text()
    assert unknown.files_text() is None
    assert (
        pending_changes(repo, None, new).commits_text()
        == f"first release on this host: releases/{new}"
    )
    assert sha_of("0123456789ab-0123abcd") == "0123456789ab"


def test_the_webhook_text_is_one_paragraph_naming_what_happened():
    body = {"action": "deploy", "release": C, "hosts": ["web1", "web2"], "failed_hosts": ["web2"],
            "outcome": "failure", "duration_seconds": 3.5, "by": "ann@laptop",
            "client": "/clients/client1.yml"}  # fmt: skip
    same = Pending(A, C, True, ("abc1234 Fix the header",), False, {})
    text = summary_text(body, [same, same])
    assert text == (
        f"Deploy of client1 to releases/{C} on web1, web2 by ann@laptop: FAILED (failed: web2) "
        f"in 3.5 s. 1 commit since releases/{A}: abc1234 Fix the header."
    )
    ok = summary_text({**body, "failed_hosts": [], "outcome": "success"}, [])
    assert ok.endswith(": succeeded in 3.5 s.") and "\n" not in ok


def test_status_names_dump_leftovers_and_a_partial_newest_dump():

    older = DumpFile("craft-1.sql.gz", mtime=1, size=10, recorded=10)
    cut = DumpFile("craft-2.sql.gz", mtime=2, size=5, recorded=10)
    folder = DumpFolder(dumps=[cut, older], leftovers=[".tmp-craft-3.sql.gz"])
    assert dump_drift(folder) == [
        "leftover of an interrupted dump: .tmp-craft-3.sql.gz",
        "the newest dump craft-2.sql.gz is partial or corrupt (not counted as fresh)",
    ]
    assert dump_drift(DumpFolder(dumps=[older])) == [] and dump_drift(None) == []


def test_pyinfra_exits_non_zero_when_a_host_failed_while_preparing():
    """adapter.count_as_failed relies on the CLI's exit reading State.failed_hosts (--dry too)."""
    import inspect

    from pyinfra_cli import cli

    assert "state.failed_hosts" in inspect.getsource(cli._exit)
    assert "sys.exit(1)" in inspect.getsource(cli._exit)
