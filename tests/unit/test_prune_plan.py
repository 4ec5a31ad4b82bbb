"""Pruning counts releases that went live: never-live releases and aside copies go first.

Pure planning (operations/plan.py) from a DeployState: what the deploy log says happened,
what releases/ holds. The end-to-end side is tests/e2e/test_prune_targets.py.
"""

import calendar

from operations import deploy_log
from operations.facts import DeployState, Entry
from operations.plan import (
    as_switched,
    plan_prune,
    previous_release,
    release_order,
    went_live,
)
from operations.states.release import made_here

A, B, C, D, E, F = (f"{c * 11}{i}" for i, c in enumerate("abcdef", 1))
NOON = calendar.timegm((2026, 11, 30, 12, 0, 0))  # when the logged events happened
RUN = f"{NOON + 3600}01234"  # a run id (context._run_id): Unix time, then 5 pid digits


def _state(releases, events, current, extra=()):
    """releases: complete release names; events: (event, release, detail); extra: (name, kind)."""
    entries = {s: Entry(s, "dir", s) for s in releases}
    entries.update({name: Entry(name, kind, None) for name, kind in extra})
    log = [
        deploy_log.line(e, s, "ann@laptop", d, when=NOON + 60 * i)  # one a minute
        for i, (e, s, d) in enumerate(events)
    ]
    return DeployState(
        root="/r", root_state="ok", current=f"link releases/{current}", entries=entries, log=log
    )


def _live(*shas):
    """Each release built, then switched to (the deploy that went well)."""
    events, before = [], "-"
    for sha in shas:
        events += [("populated", sha, ""), ("switch", sha, f"from {before}")]
        before = sha
    return events


def _failed_hook(sha):
    return [("populated", sha, ""), ("hook-failed", sha, "before_switch: exit 1")]


def _aside(sha, why):
    name = f".aside-{sha}-{RUN}"
    return name, [("aside", sha, deploy_log.aside_detail(name, why)), ("populated", sha, "")]


def test_two_failed_deploys_leave_two_rollback_targets_with_keep_3():
    # A, B, C went live; D and E failed their before_switch hook; F went live.
    events = [*_live(A, B, C), *_failed_hook(D), *_failed_hook(E), *_live(F)]
    state = _state([A, B, C, D, E, F], events, current=F)
    plan = plan_prune(state, keep=3, protect=(F,))
    assert plan.kept == [F, C, B]  # live, then two rollback targets
    assert sorted(plan.delete) == sorted([A, D, E])
    assert plan.delete.index(D) < plan.delete.index(A)  # never-live ones go first
    assert plan.reasons[D] == "never went live: its before_switch hook failed"
    assert plan.reasons[A] == "old"
    # after a rollback to C, B is still there to roll back to
    rolled = _state(plan.kept, [*events, ("rollback", C, f"from {F}")], current=C)
    assert previous_release(rolled) == B


def test_a_release_rolled_back_by_its_health_check_never_went_live():
    events = [*_live(A, B), ("populated", C, ""), ("switch", C, f"from {B}"),
              ("health-failed", C, "web1: status 500"), ("rollback", B, f"from {C} (health check)"),
              *_live(D)]  # fmt: skip
    assert went_live(deploy_log.parse(_state([], events, current=D).log)) == {A, B, D}
    plan = plan_prune(_state([A, B, C, D], events, current=D), keep=3, protect=(D,))
    assert plan.kept == [D, B, A]
    assert plan.delete == [C]
    assert plan.reasons[C] == "never went live: its health check failed"


def test_a_release_that_went_live_before_stays_once_live_after_a_failed_health_check():
    events = [*_live(A, B), ("switch", A, f"from {B}"), ("health-failed", A, "web1: timeout"),
              ("rollback", B, f"from {A} (health check)")]  # fmt: skip
    assert went_live(deploy_log.parse(_state([], events, current=B).log)) == {A, B}


def test_a_deploy_stopped_before_its_switch_left_a_never_live_release():
    events = [*_live(A, B, C), ("populated", D, "")]
    plan = plan_prune(_state([A, B, C, D], events, current=C), keep=3, protect=(C,))
    assert plan.delete == [D] and plan.reasons[D] == "never went live"


def test_never_live_releases_and_aside_copies_fill_free_slots():
    aside, moved = _aside(B, deploy_log.EDITED)
    events = [*_live(A, B), *moved, ("populated", C, "")]
    plan = plan_prune(_state([A, B, C], events, current=B, extra=[(aside, "dir")]), keep=5)
    assert plan.delete == []
    assert set(plan.kept) == {A, B, C, aside}


def test_an_aside_copy_goes_before_any_once_live_release_and_is_named_for_what_it_is():
    aside, moved = _aside(C, deploy_log.EDITED)
    events = [*_live(A, B, C), *moved]
    plan = plan_prune(_state([A, B, C], events, current=C, extra=[(aside, "dir")]), keep=3)
    assert plan.kept == [C, B, A]
    assert plan.delete == [aside]
    assert plan.reasons[aside] == (
        "copy put aside on 2026-11-30 12:06 UTC because it was edited on the server"
    )


def test_never_live_releases_go_before_aside_copies():
    aside, moved = _aside(B, deploy_log.INCOMPLETE)
    events = [*_live(A, B), *moved, *_failed_hook(C), *_live(D)]
    state = _state([A, B, C, D], events, current=D, extra=[(aside, "dir")])
    plan = plan_prune(state, keep=4, protect=(D,))
    assert plan.delete == [C]
    plan = plan_prune(state, keep=3, protect=(D,))
    assert plan.delete == [C, aside]
    assert plan.reasons[aside].endswith("because it was incomplete")


def test_an_aside_copy_made_by_this_run_is_kept_without_taking_a_slot():
    aside, moved = _aside(D, deploy_log.FOREIGN)
    events = [*_live(A, B, C), *moved, *_live(D)]
    state = _state([A, B, C, D], events, current=D, extra=[(aside, "dir")])
    plan = plan_prune(state, keep=3, protect=(D,), spare=(aside,))
    assert set(plan.kept) == {D, C, B, aside}
    assert plan.delete == [A]
    # at the next run too: someone else's folder is moved aside, never deleted (reported)
    plan = plan_prune(state, keep=3, protect=(D,))
    assert plan.delete == [A] and aside in plan.foreign


def test_an_aside_copy_the_log_does_not_name_is_dated_by_its_run_id():
    aside = f".aside-{A}-{RUN}"
    state = _state([A, B], _live(A, B), current=B, extra=[(aside, "dir")])
    plan = plan_prune(state, keep=2)
    assert plan.reasons[aside] == "copy put aside on 2026-11-30 13:00 UTC (edited or incomplete)"
    odd = f".aside-{A}-17000000001"  # not a run id this tool writes: no date is made up
    state = _state([A, B], _live(A, B), current=B, extra=[(odd, "dir")])
    assert plan_prune(state, keep=2).reasons[odd] == "copy put aside (edited or incomplete)"


def test_aside_lines_written_before_the_reason_was_logged_still_order_and_date_the_copy():
    aside = f".aside-{B}-17000000001"
    events = [*_live(A, B), ("aside", B, aside), ("populated", B, "")]  # detail: the name only
    state = _state([A, B], events, current=B, extra=[(aside, "dir")])
    assert release_order(state) == [B, aside, A]
    assert plan_prune(state, keep=2).reasons[aside] == (
        "copy put aside on 2026-11-30 12:04 UTC (edited or incomplete)"
    )


def test_a_release_the_log_never_saw_built_counts_as_once_live_and_oldest():
    # copied by hand (with its marker), or the log was lost: it may be a rollback target
    events = [*_live(B, C), *_failed_hook(D), *_live(E)]
    plan = plan_prune(_state([A, B, C, D, E], events, current=E), keep=4, protect=(E,))
    assert plan.kept == [E, C, B, A]
    assert plan.delete == [D]


def test_a_dry_run_plans_pruning_as_after_the_switch():
    # prepared before anything runs, the read still shows C live; the real prune runs after D
    state = _state([A, B, C], _live(A, B, C), current=C)
    assert plan_prune(state, keep=3, protect=(D,)).delete == []
    after = as_switched(state, D)
    assert previous_release(after) == C
    plan = plan_prune(after, keep=3, protect=(D,))
    assert plan.kept == [D, C, B] and plan.delete == [A]
    assert as_switched(after, D) is after  # already live: nothing to foresee


def test_aside_detail_round_trips_and_reads_old_lines():
    detail = deploy_log.aside_detail(f".aside-{A}-{RUN}", deploy_log.FOREIGN)
    assert deploy_log.aside_of(detail) == (f".aside-{A}-{RUN}", "not made by atomic-deploy")
    assert deploy_log.aside_of(f".aside-{A}-{RUN}") == (f".aside-{A}-{RUN}", "")


def test_a_folder_is_ours_if_its_marker_or_the_log_says_so():
    state = _state([A], _live(A) + [("populated", B, "")], current=A,
                   extra=[(B, "dir"), (C, "dir")])  # fmt: skip
    assert made_here(state, A)  # complete
    assert made_here(state, B)  # lost its marker, but the log says it was built
    assert not made_here(state, C)  # a person or another tool made it
