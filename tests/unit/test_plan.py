"""Pure planning: release order from the deploy log, rollback target, prune decisions."""

import pytest

from operations.deploy_log import line as log_line
from operations.facts import DeployState, Entry
from operations.plan import current_release, plan_prune, previous_release, release_order
from operations.states.shared import link_target as shared_link_target

SHAS = [f"{i:07x}a" for i in range(1, 9)]  # 8 valid release names


def _state(complete, log, current=None, extra=()):
    entries = {s: Entry(s, "dir", s) for s in complete}
    entries.update({name: Entry(name, kind, None) for name, kind in extra})
    state = DeployState(
        root="/r", root_state="ok", entries=entries, log=[log_line(e, s, "me") for e, s in log]
    )
    if current:
        state.current = f"link releases/{current}"
    return state


def _deploys(shas):
    return [(e, s) for s in shas for e in ("populated", "switch")]


def test_order_follows_the_log_not_the_names():
    shas = ["ffffff1", "0000001", "aaaaaa1"]
    state = _state(shas, _deploys(shas), current="aaaaaa1")
    assert release_order(state) == ["aaaaaa1", "0000001", "ffffff1"]


def test_previous_is_the_release_switched_to_before_the_live_one():
    state = _state(SHAS[:3], _deploys(SHAS[:3]), current=SHAS[2])
    assert current_release(state) == SHAS[2]
    assert previous_release(state) == SHAS[1]


def test_keep_n_drops_the_oldest():
    state = _state(SHAS, _deploys(SHAS), current=SHAS[-1])
    plan = plan_prune(state, keep=3, protect=(SHAS[-1],))
    assert plan.kept == [SHAS[7], SHAS[6], SHAS[5]]
    assert sorted(plan.delete) == sorted(SHAS[:5])


def test_live_and_previous_survive_even_when_old():
    # current was rolled back to SHAS[0] after SHAS[1..7] were deployed
    log = _deploys(SHAS) + [("switch", SHAS[0])]
    state = _state(SHAS, log, current=SHAS[0])
    plan = plan_prune(state, keep=2, protect=(SHAS[0],))
    assert SHAS[0] in plan.kept and SHAS[7] in plan.kept  # live, previous
    assert len(plan.kept) == 2


def test_protected_win_over_keep():
    state = _state(SHAS[:3], _deploys(SHAS[:2]) + [("populated", SHAS[2])], current=SHAS[1])
    plan = plan_prune(state, keep=1, protect=(SHAS[2],))
    assert set(plan.kept) == {SHAS[0], SHAS[1], SHAS[2]}
    assert plan.delete == []


def test_leftovers_go_first_and_foreign_dirs_are_only_reported():
    extra = [
        (".tmp-1234567-17000000001", "dir"),
        (".tmp-1234567-17000000001-final", "dir"),
        ("my-backup", "dir"),
        ("abcdef0", "dir"),
        ("evil", "link"),
        (".tmp-x", "dir"),
    ]
    state = _state(SHAS[:2], _deploys(SHAS[:2]), current=SHAS[1], extra=extra)
    plan = plan_prune(state, keep=5)
    assert sorted(plan.delete) == [".tmp-1234567-17000000001", ".tmp-1234567-17000000001-final"]
    assert sorted(plan.foreign) == [".tmp-x", "abcdef0", "evil", "my-backup"]


def test_a_build_copy_that_is_live_is_never_a_leftover():
    build = f".tmp-{SHAS[0]}-17000000001"
    state = _state(SHAS[:1], _deploys(SHAS[:1]), extra=[(build, "dir")])
    state.current = f"link releases/{build}"  # a run was cut while serving its clean copy
    assert build not in plan_prune(state, keep=1).delete


def test_aside_copies_are_pruned_by_the_keep_rule():
    aside = f".aside-{SHAS[1]}-17000000001"
    log = _deploys(SHAS[:2]) + [("aside", SHAS[1]), ("populated", SHAS[1])]
    state = _state(SHAS[:2], log, current=SHAS[1], extra=[(aside, "dir")])
    state.log[-2] += aside  # the aside event names the copy in its detail field
    assert aside in plan_prune(state, keep=3).kept
    assert plan_prune(state, keep=2).delete == [aside]


def test_releases_unknown_to_the_log_count_as_oldest():
    state = _state(SHAS[:3], _deploys(SHAS[1:3]), current=SHAS[2])
    assert release_order(state)[-1] == SHAS[0]


def test_keep_must_be_positive():
    with pytest.raises(ValueError):
        plan_prune(_state([], []), keep=0)


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("storage", "../../shared/storage"),
        ("web/uploads", "../../../shared/web/uploads"),
        (".env", "../../shared/.env"),
    ],
)
def test_shared_links_are_relative_from_the_release(path, target):
    assert shared_link_target(path) == target
