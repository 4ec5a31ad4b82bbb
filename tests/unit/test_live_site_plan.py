"""Pure parts of running a live site: rollback target, hooks' commands, health, status, restore."""

import http.server
import json
import subprocess
import threading
from pathlib import Path

import pytest
import yaml
from support.site import SiteRepo

from operations.config import ConfigError, inventory_hosts, load_client
from operations.deploy_log import line as log_line
from operations.facts import DeployState, Entry, parse_deploy_tree
from operations.layout import Layout
from operations.live import Health, Hook, Hooks, uploads_source
from operations.plan import plan_prune, previous_release, release_order
from operations.states.health import check, check_once
from operations.states.hooks import hook_command, hook_env
from operations.states.notify import post
from operations.states.restore import dump_before, rolled_back_from
from operations.states.rollback import find_target
from operations.states.shared import link_target as shared_link_target
from operations.states.status import drift, format_text, report

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


def test_hook_runs_as_written_with_quoted_environment(tmp_path):
    root = str(tmp_path / "it's $(root)")
    (tmp_path / "it's $(root)" / "releases" / A).mkdir(parents=True)
    env = hook_env(root, A, None, "web1", "/usr/bin/php 8")
    hook = (
        'echo "$ATOMIC_RELEASE|$ATOMIC_PREVIOUS_RELEASE|$(pwd)|$ATOMIC_HOST|$ATOMIC_PHP"'
        " && echo $((1+2))"
    )
    command = hook_command(env["ATOMIC_RELEASE_PATH"], env, hook)
    out = subprocess.run(["sh", "-c", command.get_raw_value()], capture_output=True, text=True)
    assert out.stdout == f"{A}||{root}/releases/{A}|web1|/usr/bin/php 8\n3\n"


def test_hooks_and_health_from_the_client_file(tmp_path):
    client = load_client(_client(tmp_path, hooks={"before_switch": ["a", "b"]}))
    hooks = client.hooks
    assert [h.run for h in hooks.before_switch] == ["a", "b"] and hooks.on_failure == ()
    assert client.health is None
    health = load_client(_client(tmp_path, health={"url": "http://x/{host}/h"})).health
    assert health.url_for("web2") == "http://x/web2/h" and health.status == 200


def test_only_deploy_py_names_the_release_after_the_source():
    assert uploads_source(["pyinfra", "inv.py", "deploy.py"])
    assert not uploads_source(["pyinfra", "inv.py", "rollback.py"])
    assert not uploads_source(["pyinfra", "-y", "inventories/c.py", "./status.py", "--dry"])


class _Server(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        status = 500 if "bad" in self.path else 200
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"all ok")

    def do_POST(self):  # noqa: N802
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_health_check_status_body_and_retries(server):
    health = Health(url="", status=200, contains="ok", retries=2, delay=0.5, timeout=2)
    assert check_once(health, f"{server}/good") is None
    nope = Health(url="", status=200, contains="nope", retries=3, delay=1, timeout=5)
    assert check_once(nope, f"{server}/good").endswith("does not contain 'nope'")
    sleeps = []
    problem = check(health, f"{server}/bad", sleep=sleeps.append)
    assert problem == f"GET {server}/bad: status 500, expected 200 (3 attempts)"
    assert sleeps == [0.5, 0.5]
    assert "refused" in check_once(health, "http://127.0.0.1:9/").lower()


def test_webhook_failure_is_a_message_not_an_exception(server):
    assert "500" in post(f"{server}/hook", {"a": 1})
    assert post("http://127.0.0.1:9/hook", {"a": 1}, timeout=1)


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


def test_restore_picks_the_dump_written_before_the_switch():
    log = [
        log_line("dump", A, "me", "backups/craft-1-aaa.sql.gz"),
        log_line("switch", A, "me", "from -"),
        log_line("switch", B, "me", f"from {A}"),  # the dump of A was still fresh
        log_line("dump", C, "me", "backups/craft-2-ccc.sql.gz"),
        log_line("switch", C, "me", f"from {B}"),
        log_line("rollback", B, "me", f"from {C}"),
    ]
    assert dump_before(log, B) == "craft-1-aaa.sql.gz"
    assert dump_before(log, C) == "craft-2-ccc.sql.gz"
    assert dump_before(log, D) is None
    assert rolled_back_from(log) == C
    assert rolled_back_from([*log, log_line("rollback", C, "me", f"named; left {B}")]) == B


def _client(tmp_path: Path, **extra) -> Path:
    SiteRepo.create(tmp_path / "site")
    doc = {"source": "site", "hosts": [{"name": "web1", "host_key_policy": "accept-new"}], **extra}
    (tmp_path / "client.yml").write_text(yaml.safe_dump(doc))
    return tmp_path / "client.yml"


def test_live_site_sections_are_validated_and_reach_host_data(tmp_path):
    file = _client(
        tmp_path,
        hooks={"before_switch": ["php craft migrate/all"]},
        health={"url": "https://{host}.example/health", "contains": "ok"},
        notify={"webhook": "https://hooks.example/x"},
    )
    assert load_client(file).health.contains == "ok"
    [(_, data)] = inventory_hosts(tmp_path / "client.py", argv=["pyinfra", "x.py", "deploy.py"])
    assert data["hooks"] == Hooks(
        before_switch=(Hook("php craft migrate/all", once=False, hosts=()),),
        after_switch=(), on_failure=(), after_rollback=(), php_binary="php", maintenance=False,
    )  # fmt: skip
    assert data["webhook"] == "https://hooks.example/x"
    for bad, where in (
        ({"hooks": {"before": ["x"]}}, "hooks: unknown key 'before'"),
        ({"health": {"status": 200}}, "health: missing required key 'url'"),
        ({"notify": {"webhook": "ftp://x"}}, "notify.webhook"),
        ({"hooks": {"after_switch": ["a\nb"]}}, "hooks.after_switch[0]"),
    ):
        with pytest.raises(ConfigError) as info:
            load_client(_client(tmp_path, **bad))
        assert where in str(info.value), str(info.value)


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
