"""The status report of a host, from its deploy-root read."""

import json

from operations.deploy_log import line as log_line
from operations.facts import DeployState, parse_deploy_tree
from operations.layout import Layout
from operations.states.shared import link_target as shared_link_target
from operations.states.status import drift, format_text, report

A, B, C, D = "aaaaaaaaaaa1", "bbbbbbbbbbb2", "ccccccccccc3", "ddddddddddd4"


LAYOUT = Layout(root="/r", docroot="htdocs", shared_dirs=("cache", "content", "storage"),
                shared_files=())  # fmt: skip


def _tree(*lines: str) -> DeployState:
    shared = [f"shared {i} dir" for i in range(3)]
    paths = enumerate(LAYOUT.shared_paths)
    links = [f"rel {i} link {shared_link_target(p)}" for i, (_, p) in paths]
    return parse_deploy_tree(
        ["root /r", "rootstate ok", f"top current link releases/{B}",
         "top docroot link current/htdocs", f"entry dir {A} {A}", f"entry dir {B} {B}",
         "manifest ok", *shared, *links,
         "log " + log_line("switch", A, "me@box", "from -"),
         "log " + log_line("switch", B, "ann@laptop", f"from {A}"), *lines]
    )  # fmt: skip


def test_status_report_of_a_converged_host():
    data = report("web1", _tree(), LAYOUT, lines=1)
    assert data["live"] == B and data["previous"] == A and data["live_by"] == "ann@laptop"
    assert [{k: r[k] for k in ("release", "live", "previous")} for r in data["releases"]] == [
        {"release": B, "live": True, "previous": False},
        {"release": A, "live": False, "previous": True},
    ]
    assert data["drift"] == [] and data["lock"] is None
    assert [e["event"] for e in data["history"]] == ["switch"]
    text = format_text(data)
    assert f"releases, last live first: {B} (live), {A} (previous)" in text
    assert "drift: none" in text and "lock: free" in text
    json.dumps(data)


def test_status_names_the_drift():
    state = _tree(
        "manifest changed", "diff > f 1 2 config/x.php", "tmplink .current.atomic-deploy-tmp"
    )
    state.docroot = "dir"
    state.in_release[1] = "dir"
    found = drift(state, LAYOUT)
    assert found[0] == "htdocs is dir (should be a link -> current/htdocs)"
    assert any(f"releases/{B}/content is dir" in item for item in found)
    assert any("changed on the server" in item for item in found)
    assert found[-1] == "leftover temporary link .current.atomic-deploy-tmp"
