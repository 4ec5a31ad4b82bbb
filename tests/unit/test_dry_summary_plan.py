"""The dry run's closing summary, from what the operations recorded while preparing."""

from operations.dry_summary import summary_lines


def test_each_host_says_its_switch_and_what_else_would_change():
    switches = {"web1": ("h9", "current releases/a -> releases/b"),
                "web2": ("h9", "current stays at releases/b")}  # fmt: skip
    changes = {"web1": [("h1", "release b populated"), ("h9", "current -> releases/b")]}
    assert summary_lines(["web2", "web1"], switches, changes, {}) == [
        "web1: current releases/a -> releases/b; also: release b populated",
        "web2: current stays at releases/b; nothing else would change",
    ]


def test_a_host_without_a_switch_lists_its_changes_or_says_nothing_would_change():
    changes = {"web1": [("h1", "rolled back to a")]}
    assert summary_lines(["web1", "web2"], {}, changes, {}) == [
        "web1: rolled back to a",
        "web2: nothing would change",
    ]


def test_a_host_that_would_stop_means_no_host_would_switch():
    switches = {"web1": ("h9", "current releases/a -> releases/b")}
    lines = summary_lines(["web1", "web2"], switches, {}, {"web2": "shared/.env is missing"})
    assert lines == [
        "the deploy would stop, so no host would switch:",
        "would stop: web2: shared/.env is missing",
    ]
