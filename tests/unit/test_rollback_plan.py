"""Rollback targets, from the deploy log (pure planning)."""

from pathlib import Path

import pytest
import yaml
from support.site import SiteRepo

from operations.config import inventory_hosts
from operations.deploy_log import line as log_line
from operations.facts import DeployState, Entry
from operations.live import uploads_source
from operations.plan import plan_prune, previous_release, release_order
from operations.states.rollback import find_target

A, B, C, D = "aaaaaaaaaaa1", "bbbbbbbbbbb2", "ccccccccccc3", "ddddddddddd4"


def _state(complete, events, current=None) -> DeployState:
    state = DeployState(
        root="/r",
        root_state="ok",
        entries={s: Entry(s, "dir", s) for s in complete},
        log=[log_line(e, s, "me@box", detail) for e, s, detail in events],
    )
    if current:
        state.current = f"link releases/{current}"
    return state


DEPLOYED = [("switch", A, "from -"), ("switch", B, f"from {A}"), ("switch", C, f"from {B}")]


def test_rollback_target_skips_the_release_rolled_back_from():
    state = _state([A, B, C], [*DEPLOYED, ("rollback", B, f"from {C}")], current=B)
    assert previous_release(state) == A  # not C: rolling back twice goes further back
    assert find_target(state, None) == (A, "")
    assert find_target(state, C) == (C, "")  # roll forward by name
    assert release_order(state)[0] == B  # the rollback made B the most recently used
    assert C in plan_prune(state, keep=3).kept


def test_named_rollback_keeps_the_older_release_the_target():
    events = [*DEPLOYED, ("rollback", B, f"from {C}"), ("rollback", C, f"named; left {B}")]
    assert previous_release(_state([A, B, C], events, current=C)) == B


def test_deploy_after_a_rollback_works_normally():
    events = [*DEPLOYED, ("rollback", B, f"from {C}"), ("switch", D, f"from {B}")]
    assert previous_release(_state([A, B, C, D], events, current=D)) == B
    # deploying the rolled-back release again makes it an ordinary release
    events = [*DEPLOYED, ("rollback", B, f"from {C}"), ("switch", C, f"from {B}")]
    assert previous_release(_state([A, B, C], events, current=C)) == B


def test_rollback_target_missing_or_incomplete_is_explained():
    assert find_target(_state([C], DEPLOYED, current=C), None)[0] is None
    target, why = find_target(_state([B, C], DEPLOYED, current=C), A)
    assert target is None and why.startswith(f"releases/{A} is not a complete release on this host")
    full = A + "0" * 28
    assert find_target(_state([A, C], DEPLOYED, current=C), full) == (A, "")


def test_only_deploy_py_names_the_release_after_the_source():
    assert uploads_source(["pyinfra", "inv.py", "deploy.py"])
    assert not uploads_source(["pyinfra", "inv.py", "rollback.py"])
    assert not uploads_source(["pyinfra", "-y", "inventories/c.py", "./status.py", "--dry"])


def _client(tmp_path: Path, **extra) -> Path:
    SiteRepo.create(tmp_path / "site")
    doc = {"source": "site", "hosts": [{"name": "web1", "host_key_policy": "accept-new"}], **extra}
    (tmp_path / "client.yml").write_text(yaml.safe_dump(doc))
    return tmp_path / "client.yml"


def test_rollback_release_is_not_compared_with_the_source(tmp_path, capsys):
    _client(tmp_path)
    argv = ["pyinfra", "inv.py", "rollback.py", "--data", f'release="{A}"']
    [(_, data)] = inventory_hosts(tmp_path / "client.py", argv=argv)
    assert data["release"] == A  # not HEAD of the source
    [(_, data)] = inventory_hosts(tmp_path / "client.py", argv=argv[:3])
    assert data["release"] is None
    with pytest.raises(SystemExit):
        inventory_hosts(tmp_path / "client.py", argv=[*argv[:3], "--data", "release=1234e56"])
    assert "Quote it as JSON" in capsys.readouterr().err
