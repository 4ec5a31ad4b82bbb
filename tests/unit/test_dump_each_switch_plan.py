"""Without a host: the dump before each switch (the default) against max_age's older rule."""

from __future__ import annotations

import pytest

from operations.database import Database, DumpFile, DumpFolder, Switch, plan_dump

NOW = 1_000_000


def _folder(*ages: int) -> DumpFolder:
    dumps = [
        DumpFile(f"craft-202401{i + 1:02d}T000000Z-abcdef1.sql.gz", NOW - age, 100, 100)
        for i, age in enumerate(ages)
    ]
    return DumpFolder(now=NOW, folder="ok", mode="700", dumps=dumps)


def _db(**kw) -> Database:
    return Database(**{"name": "craft", "dir": "backups", "max_age": None, "keep": 3, **kw})


def test_a_switch_to_another_release_dumps_however_young_the_newest_dump():
    plan = plan_dump(_folder(5), _db(), Switch("web1", "aaaaaaa", "bbbbbbb"))
    assert plan.new_dump
    assert plan.message == "dump craft: before switching web1 to releases/bbbbbbb -> new dump"


def test_a_first_deploy_dumps_before_its_first_switch():
    assert plan_dump(DumpFolder(now=NOW), _db(), Switch("web1", None, "bbbbbbb")).new_dump


def test_a_rerun_of_the_live_release_dumps_nothing_however_old_the_newest_dump():
    plan = plan_dump(_folder(30 * 86400), _db(), Switch("web1", "bbbbbbb", "bbbbbbb"))
    assert not plan.new_dump
    assert plan.message == "dump craft: releases/bbbbbbb is already live on web1: no dump"


def test_keep_counts_the_new_dump_before_a_switch():
    plan = plan_dump(_folder(10, 20, 30), _db(keep=3), Switch("web1", "a" * 7, "b" * 7))
    assert plan.prune == ["craft-20240103T000000Z-abcdef1.sql.gz"]  # the oldest goes


def test_max_age_set_is_the_old_rule_switch_or_not():
    young, old = _folder(5), _folder(2 * 3600)
    switching, staying = Switch("web1", "a" * 7, "b" * 7), Switch("web1", "b" * 7, "b" * 7)
    assert not plan_dump(young, _db(max_age=3600), switching).new_dump  # it counts
    assert plan_dump(old, _db(max_age=3600), staying).new_dump  # stale, even without a switch
    assert plan_dump(young, _db(max_age=3600)).message == "dump craft: fresh (5 s old)"


def test_without_max_age_the_switch_must_be_known():
    with pytest.raises(ValueError, match="switch"):
        plan_dump(_folder(5), _db())
