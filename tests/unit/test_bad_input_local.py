"""Hostile and careless input, locally (issue 8): rows of docs/bad-input.md not already covered
by test_config.py, the host key check before connecting, and a property-based check that
whatever validation accepts reaches the host only inside quotes.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from fakes import FakeHost, make_deploy
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pyinfra.api import FunctionCommand, QuoteString, StringCommand
from pyinfra.context import ctx_host, ctx_state
from support.site import SiteRepo

from operations import rsync
from operations.config import (
    ConfigError,
    client_file_as_inventory,
    host_data,
    inventory_hosts,
    load_client,
    refuse_client_file_as_inventory,
)
from operations.deploy_log import line as log_line
from operations.facts import DeployState, Entry
from operations.layout import META_DIR, Deploy
from operations.states import prune, release, shared, shared_sources, switch, tree
from operations.states.preflight import host_ready

HOSTKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGgT2fqsUHPr5TltS5JF1jIqEEpKj2jXchyV+eYWZGSL"
PWNED = "/tmp/atomic-deploy-pwned-unit"
METACHARS = f"$(touch {PWNED}) `touch {PWNED}`; touch {PWNED} | & 'q' \"dq\" \\ * ? ~ # ü ☃"


def _write(tmp_path: Path, doc: object) -> Path:
    file = tmp_path / "client.yml"
    file.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, allow_unicode=True))
    return file


def _error(tmp_path: Path, doc: object) -> str:
    with pytest.raises(ConfigError) as info:
        load_client(_write(tmp_path, doc))
    return str(info.value)


def _doc(**keys: Any) -> dict[str, Any]:
    return {"source": ".", "hosts": [{"name": "a"}], **keys}


# --------------------------------------------------------------------------- config rows


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (_doc(keep_releases=-1), "keep_releases: -1 is less than the minimum of 1"),
        (_doc(keep_releases=101), "keep_releases: 101 is greater than the maximum of 100"),
        (_doc(keep_releases=10**30), "is greater than the maximum of 100"),
        (_doc(keep_releases=True), "keep_releases: True is not of type 'integer'"),
        (_doc(keep_releases="5"), "keep_releases: '5' is not of type 'integer'"),
        (_doc(shared_dirs="cache"), "shared_dirs: 'cache' is not of type 'array'"),
        (_doc(hosts={"name": "a"}), "hosts: {'name': 'a'} is not of type 'array'"),
        (_doc(root="/srv/a\nb"), "root: '/srv/a\\nb' contains a newline"),
        # a pattern's '$' matches before a final newline: these slipped through the schema
        (_doc(root="/srv/a\n"), "root: '/srv/a\\n' contains a newline"),
        (_doc(docroot="htdocs\n"), "docroot: 'htdocs\\n' contains a newline"),
        (_doc(shared_dirs=["cache\n"]), "shared_dirs[0]: 'cache\\n' contains a newline"),
        ({"source": ".", "hosts": [{"name": "a\n"}]}, "hosts[0].name: 'a\\n' contains a newline"),
        (_doc(exclude=["*.log\r"]), "exclude[0]: '*.log\\r' contains a newline"),
        # a root that is '/' in disguise, or not a plain absolute path
        (_doc(root="/.."), "root: '/..' must be an absolute path other than '/'"),
        (_doc(root="/srv/../etc"), "without '.' or '..' parts"),
        (_doc(root="/srv/./x"), "without '.' or '..' parts"),
        (_doc(root="//srv"), "root: '//srv' must be"),
        (_doc(root="/srv/x/"), "root: '/srv/x/' must be"),
        (_doc(shared_dirs=["a/./b"]), "shared_dirs[0]: 'a/./b' must be a path relative"),
        (_doc(shared_files=["x", "x"]), "shared_files: ['x', 'x'] has non-unique elements"),
        (_doc(shared_dirs=["x"], shared_files=["x"]), "'x' is also listed in shared_dirs"),
        (_doc(docroot="../www"), "docroot: '../www' must be letters, digits"),
        (_doc(docroot="$(id)"), "docroot: '$(id)' must be letters, digits"),
        (_doc(ssh={"user": "deploy;id"}), "ssh.user: 'deploy;id' must be letters"),
        (
            {"source": ".", "hosts": [{"name": "$(id)"}]},
            "hosts[0].name: '$(id)' must be '@local' or letters",
        ),
        (
            {"source": ".", "hosts": [{"name": "a", "hostname": "h;id"}]},
            "hosts[0].hostname: 'h;id' must be a host name",
        ),
        (_doc(ssh={"host_key_policy": "no"}), "ssh.host_key_policy: 'no' is not one of"),
    ],
)
def test_more_bad_documents_are_refused_with_key_path(tmp_path, doc, expected):
    message = _error(tmp_path, doc)
    assert str(tmp_path / "client.yml") in message
    assert expected in message


@pytest.mark.parametrize(
    "root", ["/srv/my site", "/srv/it's", '/srv/"quoted"', "/srv/ünïcödé ☃", f"/srv/{METACHARS}"]
)
def test_odd_but_valid_roots_are_accepted_as_they_are(tmp_path, root):
    (tmp_path / "site").mkdir()
    client = load_client(
        _write(tmp_path, {"source": "site", "root": root, "hosts": [{"name": "a"}]})
    )
    assert client.hosts[0]["root"] == root  # not changed, not re-quoted: quoted when used


def test_deep_yaml_aliases_are_bounded(tmp_path):
    """A 'billion laughs' document: aliases nest deeper than the limit, refused quickly."""
    lines = ["a0: &a0 [x, x]"] + [
        f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 12)
    ]  # 12 levels (not too deep), 2 * 3**11 = 354 294 values
    message = _error(tmp_path, "\n".join(lines) + "\nsource: .\nhosts: [{name: a}]\n")
    assert "more than 20000 values once anchors and aliases are expanded" in message


# --------------------------------------------------------------------------- inventory rows


def _inventory(tmp_path: Path, hosts: list[dict] | None = None, **extra: Any) -> Path:
    hosts = [{"name": "@local"}] if hosts is None else hosts
    _write(tmp_path, {"source": "site", "hosts": hosts, **extra})
    return tmp_path / "client.py"


def _refused(tmp_path: Path, capsys, argv: list[str], **kw: Any) -> str:
    with pytest.raises(SystemExit) as info:
        inventory_hosts(_inventory(tmp_path, **kw), argv=argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("atomic-deploy: ")  # the source: the file or the CLI option
    return err


def test_a_source_that_is_not_a_git_checkout_needs_a_release_name(tmp_path, capsys):
    (tmp_path / "site" / "htdocs").mkdir(parents=True)
    (tmp_path / "site" / "htdocs" / "index.php").write_text("<?php echo 1;\n")
    err = _refused(tmp_path, capsys, [])
    assert (
        str(tmp_path / "client.yml") in err
        and "is not a git checkout" in err
        and "--data 'release=\"<sha>\"'" in err
    )
    [(_, data)] = inventory_hosts(_inventory(tmp_path), argv=["--data", 'release="abcdef1"'])
    # Not a commit: the name carries a digest of the folder's content.
    assert re.fullmatch(r"abcdef1-[0-9a-f]{8}", data["release"])
    (tmp_path / "site" / "htdocs" / "index.php").write_text("<?php echo 2;\n")
    [(_, again)] = inventory_hosts(_inventory(tmp_path), argv=["--data", 'release="abcdef1"'])
    assert again["release"] != data["release"]


@pytest.mark.parametrize(
    "raw",
    [
        '"`touch /tmp/x`"',
        '"abcdef1\\n"',  # JSON for a trailing newline: '$' in the sha pattern let it through
        '"abcdef1\\ntouch /tmp/x"',
        '"abcdef1 ; id"',
        '"ABCDEF1"',
        '""',
    ],
)
def test_shell_metacharacters_in_the_release_name_are_refused(tmp_path, capsys, raw):
    (tmp_path / "site").mkdir()  # not a checkout: the explicit name is all there is
    err = _refused(tmp_path, capsys, ["--data", f"release={raw}"])
    assert "--data release: " in err and "is not a git sha (expected 7 to 40 characters" in err


def test_allow_dirty_on_the_command_line_must_be_a_boolean(tmp_path, capsys):
    SiteRepo.create(tmp_path / "site")
    err = _refused(tmp_path, capsys, ["--data", "allow_dirty=maybe"])
    assert "--data allow_dirty=maybe: expected true or false" in err


# --------------------------------------------------------------------------- host keys


def _hosts_with_keys(tmp_path: Path, known: str | None, **host: Any) -> list[dict]:
    if known is not None:
        (tmp_path / "known_hosts").write_text(known)
    return [{"name": "web1", "known_hosts": "known_hosts", **host}]


def test_a_strict_host_missing_from_known_hosts_is_refused_with_how_to_add_it(tmp_path, capsys):
    SiteRepo.create(tmp_path / "site")
    hosts = _hosts_with_keys(tmp_path, f"other {HOSTKEY}\n", hostname="10.0.0.5", port=2222)
    err = _refused(tmp_path, capsys, [], hosts=hosts)
    assert str(tmp_path / "client.yml") in err
    known = tmp_path / "known_hosts"
    assert f"hosts[0] (web1): known_hosts: no key for [10.0.0.5]:2222 in {known}" in err
    assert f"ssh-keyscan -p 2222 10.0.0.5 >> {known}" in err
    assert "ssh-keygen -lf -" in err and "host_key_policy: accept-new" in err


@pytest.mark.parametrize(
    ("host", "address"),
    [
        (
            {"hostname": "10.0.0.5", "port": 2222},
            "host 10.0.0.5 from hosts[0].hostname, port 2222 from hosts[0].port or ssh.port",
        ),
        (
            {},
            "host web1 from hosts[0].name, port 22 from the default; set hosts[0].port if the "
            "host listens elsewhere",
        ),
    ],
)
def test_no_key_for_a_host_says_its_address_may_be_wrong(tmp_path, capsys, host, address):
    """A mistyped host name or port also has no key: scanning it would add a useless one."""
    SiteRepo.create(tmp_path / "site")
    err = _refused(tmp_path, capsys, [], hosts=_hosts_with_keys(tmp_path, "", **host))
    assert f"Check the address first ({address}): a wrong host or port ends here too, and " in err
    assert "ssh-keyscan of a wrong host or port adds nothing useful. If they are right, " in err
    assert "add its key after checking the fingerprint" in err  # the advice that was there


def test_no_key_for_a_host_names_its_address_from_the_users_ssh_config(
    tmp_path, capsys, monkeypatch
):
    SiteRepo.create(tmp_path / "site")
    (tmp_path / "home/.ssh").mkdir(parents=True)
    (tmp_path / "home/.ssh/config").write_text("Host web1\n  HostName 10.1.1.1\n  Port 2200\n")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    err = _refused(tmp_path, capsys, [], hosts=_hosts_with_keys(tmp_path, ""))
    assert "no key for [10.1.1.1]:2200 in " in err
    assert (
        "Check the address first (host 10.1.1.1 from HostName in ~/.ssh/config for web1, port "
        "2200 from Port in ~/.ssh/config)" in err
    )


def test_a_missing_known_hosts_file_is_named(tmp_path, capsys):
    SiteRepo.create(tmp_path / "site")
    err = _refused(tmp_path, capsys, [], hosts=_hosts_with_keys(tmp_path, None))
    assert f"cannot read {tmp_path / 'known_hosts'}" in err
    assert "ssh-keyscan web1 >> " in err  # port 22: plain host name


@pytest.mark.parametrize(
    ("known", "host"),
    [
        (f"web1 {HOSTKEY}\n", {}),
        (f"[web1]:2222 {HOSTKEY}\n", {"port": 2222}),
        (f"[127.0.0.1]:2222 {HOSTKEY}\n", {"hostname": "127.0.0.1", "port": 2222}),
        ("", {"host_key_policy": "accept-new"}),  # opted into trust on first use
    ],
)
def test_known_or_trusted_on_first_use_hosts_pass(tmp_path, known, host):
    SiteRepo.create(tmp_path / "site")
    [(_, data)] = inventory_hosts(
        _inventory(tmp_path, hosts=_hosts_with_keys(tmp_path, known, **host)), argv=[]
    )
    policy = "accept-new" if host.get("host_key_policy") else "yes"
    assert data["ssh_strict_host_key_checking"] == policy


def test_hashed_known_hosts_entries_count(tmp_path):
    SiteRepo.create(tmp_path / "site")
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:2222 {HOSTKEY}\n")
    subprocess.run(["ssh-keygen", "-H", "-f", str(known)], check=True, capture_output=True)
    assert "127.0.0.1" not in known.read_text()
    hosts = [{"name": "web1", "hostname": "127.0.0.1", "port": 2222, "known_hosts": str(known)}]
    assert inventory_hosts(_inventory(tmp_path, hosts=hosts), argv=[])


# --------------------------------------------------------------------------- quoting


FACTS_READ: list[tuple[Any, dict[str, Any]]] = []  # (fact class, kwargs) the operations read


class _FakeHost(FakeHost):
    """A fake host that records which facts the operations read."""

    def get_fact(self, fact, **kwargs):
        FACTS_READ.append((fact, kwargs))
        return self.fact_state


def _states(deploy: Deploy, root: str) -> list[DeployState]:
    """Host states that drive the operations through their branches."""
    sha, old, older = deploy.release, "0ld0000000aa", "0ld0000000bb"
    n = len(deploy.layout.shared_paths)
    log = [log_line(e, s, "me") for s in (older, old) for e in ("populated", "switch")]
    fresh = DeployState(root=root, root_state="missing", rsync=True)
    seeded = DeployState(
        root=root,
        root_state="ok",
        rsync=True,
        dirs={"deploy-cache", "releases", "shared", META_DIR},
        current=f"link releases/{old}",
        docroot="link somewhere/else",
        entries={s: Entry(s, "dir", s) for s in (sha, old, older)}
        | {".tmp-0ld0000000cc": Entry(".tmp-0ld0000000cc", "dir", None)},
        shared=["missing"] * n,
        in_release=["dir" if k == "d" else "file" for k, _ in deploy.layout.shared_paths],
        log=log,
    )
    live = DeployState(**{**seeded.__dict__, "current": f"link releases/{sha}"})
    live.shared = ["dir" if k == "d" else "file" for k, _ in deploy.layout.shared_paths]
    live.in_release = ["link /outside"] * n
    broken = DeployState(root=root, root_state="notdir", rsync=True)
    return [fresh, seeded, live, broken]


def _commands(deploy: Deploy, state: DeployState) -> list[Any]:
    ops = [
        host_ready,
        tree.tree_present,
        shared_sources.shared_files_present,
        release.release_populated,
        shared.shared_linked,
        switch.current_switched,
        switch.docroot_linked,
        prune.releases_pruned,
    ]
    out: list[Any] = []
    fake = _FakeHost(state)
    with ctx_state.use(fake.state), ctx_host.use(fake):
        for op in ops:
            fake.forget_reads()
            out += list(op._inner(deploy=deploy))
    return out


def _bare(bits: list[Any]) -> list[str]:
    """The unquoted pieces of a command, nested commands included."""
    out = []
    for bit in bits:
        if isinstance(bit, StringCommand):
            out += _bare(bit.bits)
        elif not isinstance(bit, QuoteString):
            out.append(str(bit))
    return out


_CODE: set[str] = set()  # unquoted pieces seen with plain values: the operations' own code


def _unwrapped(command: Any) -> Any:
    """The host command a FunctionCommand runs (the populate command, run with its output
    shown); the upload (an argv, no shell) and anything else as they are."""
    if isinstance(command, FunctionCommand) and command.function is not rsync.upload:
        return command.args[0]
    return command


def _code_pieces() -> set[str]:
    if not _CODE:
        deploy = make_deploy(
            "/srv/site", shared_dirs=("cache", "a/b"), shared_files=(".env", "c/d.txt")
        )
        FACTS_READ.clear()
        for state in _states(deploy, "/srv/site"):
            for command in map(_unwrapped, _commands(deploy, state)):
                if isinstance(command, StringCommand):
                    _CODE.update(_bare(command.bits))
        for fact, kwargs in FACTS_READ:
            _CODE.update(_bare(fact().command(**kwargs).bits))
        FACTS_READ.clear()
    return _CODE


def _quoted_only(command: StringCommand, values: list[str]) -> None:
    """No unquoted piece of `command` holds an input value; quoted ones parse back intact.

    A piece that also appears with plain values (e.g. ';' or the fact's script) is code, not
    input, even if a short value happens to be a substring of it.
    """
    raw = command.get_raw_value()
    pieces = _bare(command.bits)
    shell = raw
    for script in (p for p in pieces if "\n" in p):  # a fact's script: not for shlex
        shell = shell.replace(script, "SCRIPT")
    tokens = shlex.split(shell)
    unknown = [p for p in pieces if p not in _code_pieces()]
    for value in values:
        for piece in unknown:
            assert value not in piece, f"unquoted input {value!r} in {raw!r}"
        # Where the value was quoted on its own, it must come back as (part of) one token. A
        # bare "in raw" would also match quote characters of unrelated quoted text.
        # (As a word of its own: "' '" also occurs between two quoted words.)
        word = rf"(?:^|(?<=[\s;&|(){{}}])){re.escape(shlex.quote(value))}(?=$|[\s;&|(){{}}])"
        if re.search(word, raw):
            assert any(value in t for t in tokens), f"{value!r} split apart in {raw!r}"


def _needs_quoting(value: str) -> bool:
    return shlex.quote(value) != value


def _check_all_commands(client_file: Path, site: Path) -> None:
    client = load_client(client_file)
    for entry in client.hosts:
        data = host_data(client, entry, "abcdef123456")
        deploy = data["deploy"]
        root = deploy.layout.root or "/home/deploy"
        values = [root, deploy.layout.docroot, *deploy.layout.shared_dirs]
        values += list(deploy.layout.shared_files)
        tainted = [v for v in values if _needs_quoting(v)]
        _code_pieces()
        FACTS_READ.clear()
        for state in _states(deploy, root):
            for command in _commands(deploy, state):
                command = _unwrapped(command)
                if isinstance(command, FunctionCommand):  # the upload: an argv, no local shell
                    fake = SimpleNamespace(connector=None, data=data, name=entry["name"])
                    argv = rsync.rsync_argv(fake, *command.args)
                    assert argv[-2] == str(site) + "/" and argv[-3] == "--"
                    assert argv[-1].endswith(":" + command.args[1] + "/")
                    assert shlex.split(argv[argv.index("-e") + 1])[0] == "ssh"
                    continue
                if isinstance(command, str):
                    command = StringCommand(command)
                _quoted_only(command, tainted)
        assert FACTS_READ
        for fact, kwargs in FACTS_READ:  # the commands that read the host quote values too
            command = fact().command(**kwargs)
            _quoted_only(
                command if isinstance(command, StringCommand) else StringCommand(command), tainted
            )


def test_metacharacters_in_every_value_stay_inside_quotes(tmp_path):
    site = tmp_path / "site"
    (site / "htdocs").mkdir(parents=True)
    doc = {
        "source": "site",
        "root": f"/srv/{METACHARS}",
        "shared_dirs": [f"d {METACHARS}", "cache"],
        "shared_files": [f"conf/{METACHARS}.env"],
        "exclude": [METACHARS],
        "hosts": [{"name": "web1"}, {"name": "web2", "root": "/srv/x'$(id)'\"`id`\""}],
    }
    client_file = _write(tmp_path, doc)
    _check_all_commands(client_file, site)
    # and every command is valid shell as a whole
    client = load_client(client_file)
    deploy = host_data(client, client.hosts[0], "abcdef123456")["deploy"]
    for state in _states(deploy, doc["root"]):
        for command in _commands(deploy, state):
            if isinstance(command, StringCommand):
                raw = command.get_raw_value()
                proc = subprocess.run(["sh", "-n", "-c", raw], capture_output=True, text=True)
                assert proc.returncode == 0, (raw, proc.stderr)


# Characters a careless or hostile value could carry: shell syntax, quotes, path syntax,
# whitespace, control characters and non-ASCII. Most values are built from one-line path
# parts, so that about half of the documents are valid and reach the command check.
_ANY = st.text(st.sampled_from(list("ab./$()`;&|*~#!{}\\'\" \t\n\r\0üé☃")), max_size=12)
_PART = st.text(st.sampled_from(list("ab-_.$()`;&|<>*?~#!{}[]\\'\" \tüé☃")), min_size=1, max_size=8)
_REL = st.lists(_PART, min_size=1, max_size=3).map("/".join)
_VALUE = st.one_of(_REL, _REL, _REL, _ANY, st.just("htdocs"))
_ROOT = st.one_of(_REL.map(lambda p: "/srv/" + p), _REL.map(lambda p: "/srv/" + p), _ANY)

_KEYS = ("root", "docroot", "shared_dirs", "shared_files", "exclude", "keep_releases", "hosts")


@st.composite
def _documents(draw) -> dict[str, Any]:
    doc: dict[str, Any] = {"source": "site"}
    if draw(st.booleans()):
        doc["root"] = draw(_ROOT)
    if draw(st.booleans()):
        plain = st.sampled_from(["public", "web", "htdocs"])
        doc["docroot"] = draw(st.one_of(plain, plain, plain, _VALUE))
    for key in ("shared_dirs", "shared_files", "exclude"):
        if draw(st.booleans()):
            doc[key] = draw(st.lists(_VALUE, max_size=3))
    if draw(st.booleans()):
        keep = st.integers(1, 100)
        doc["keep_releases"] = draw(st.one_of(keep, keep, keep, st.integers(-3, 120), _ANY))
    valid = st.sampled_from(["web1", "web2", "web3", "@local"])
    names = st.one_of(valid, valid, valid, _ANY)
    entries = st.fixed_dictionaries({"name": names})
    hosts = draw(st.lists(entries, min_size=1, max_size=3, unique_by=lambda h: h["name"]))
    for host in hosts:
        if draw(st.booleans()):
            host["root"] = draw(_ROOT)
        host["host_key_policy"] = "accept-new"
    doc["hosts"] = hosts
    return doc


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(doc=_documents())
def test_any_document_is_refused_naming_a_key_or_reaches_the_host_quoted(tmp_path, doc):
    site = tmp_path / "site"
    (site / "htdocs").mkdir(parents=True, exist_ok=True)
    file = _write(tmp_path, doc)
    try:
        load_client(file)
    except ConfigError as e:
        event("refused")
        message = str(e)
        assert message.startswith(f"{file}:\n  ")
        for line in message.splitlines()[1:]:
            where = line.strip().split(":", 1)[0]
            top = where.split(".", 1)[0].split("[", 1)[0]
            assert top in _KEYS or where == "(top level)", line
        return
    event("accepted")
    _check_all_commands(file, site)


# --------------------------------------------------------------------------- repeated keys


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "source: .\nkeep_releases: 3\nhosts: [{name: a}]\nkeep_releases: 5\n",
            "keep_releases is given twice (lines 2 and 4)",
        ),
        (
            "source: .\nhosts:\n  - name: a\n  - name: b\n    root: /srv/b\n    root: /srv/c\n",
            "hosts[1].root is given twice (lines 5 and 6)",
        ),
        (
            "source: .\nssh:\n  user: a\n  port: 22\n  user: b\nhosts: [{name: a}]\n",
            "ssh.user is given twice (lines 3 and 5)",
        ),
        (
            "source: .\nsource: .\nhosts: [{name: a}]\nsource: x\n",
            "source is given 3 times (lines 1, 2 and 4)",
        ),
        ("source: .\nhosts: [{name: a, name: b}]\n", "hosts[0].name is given twice (line 2)"),
    ],
)
def test_a_key_given_twice_is_refused_naming_both_lines(tmp_path, text, expected):
    """YAML allows it and the loader used to keep the last value without a word."""
    message = _error(tmp_path, text)
    assert message == f"{tmp_path / 'client.yml'}: {expected}"


def test_every_repeated_key_is_listed(tmp_path):
    text = "source: .\nkeep_releases: 3\nhosts: [{name: a, port: 1, port: 2}]\nkeep_releases: 4\n"
    message = _error(tmp_path, text)
    assert message.splitlines()[1:] == [
        "  keep_releases is given twice (lines 2 and 4)",
        "  hosts[0].port is given twice (line 3)",
    ]


def test_merge_keys_followed_by_an_override_are_not_repeats(tmp_path):
    (tmp_path / "site").mkdir()
    text = """source: site
ssh: &ssh {user: deploy, port: 2222}
hosts:
  - &web1 {<<: *ssh, name: web1, port: 2223}
  - <<: *web1
    name: web2
    port: 2224
  - <<: [*web1, *ssh]
    name: web3
"""
    client = load_client(_write(tmp_path, text))
    assert [(h["name"], h["user"], h["port"]) for h in client.hosts] == [
        ("web1", "deploy", 2223),
        ("web2", "deploy", 2224),
        ("web3", "deploy", 2223),  # the first mapping of a merge list wins
    ]


# --------------------------------------------------------------------------- ssh files


def _ssh_client(tmp_path: Path, ssh: dict[str, Any], *hosts: dict[str, Any]) -> Path:
    """A client file with two SSH hosts (plus `hosts`) and `ssh`; returns the file."""
    (tmp_path / "site").mkdir(exist_ok=True)
    entries = [{"name": "web1", "hostname": "127.0.0.1", "port": 1}, {"name": "web2"}, *hosts]
    return _write(tmp_path, {"source": "site", "ssh": ssh, "hosts": entries})


def _key_pair(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)]
    subprocess.run(cmd, check=True, capture_output=True)
    return path


def _ssh_file_error(tmp_path: Path, ssh: dict[str, Any], *hosts: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        load_client(_ssh_client(tmp_path, ssh, *hosts))
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'client.yml'}:\n  ")
    return message


def test_a_missing_ssh_key_is_named_once_with_its_resolved_path(tmp_path):
    """It used to end in a traceback from pyinfra's connect greenlet."""
    message = _ssh_file_error(tmp_path, {"key": "keys/id_ed25519"})
    assert message.splitlines()[1:] == [
        f"  ssh.key: the SSH key file {tmp_path / 'keys/id_ed25519'} (given as "
        "'keys/id_ed25519') does not exist"
    ]  # one line for both hosts: the key is given once, under ssh:


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: p.mkdir(parents=True), "is a folder, not a private key file"),
        (
            lambda p: p.write_text(_key_pair(p.with_name("real")).with_suffix(".pub").read_text()),
            "is a public key: give the private key (the same name without .pub)",
        ),
        (
            lambda p: p.write_text("hello\n"),
            "is not an SSH private key (expected a '-----BEGIN ... PRIVATE KEY-----' file)",
        ),
    ],
    ids=["folder", "public key", "not a key"],
)
def test_a_host_key_file_that_is_no_private_key_is_named_with_the_host_path(
    tmp_path, make, expected
):
    bad = tmp_path / "keys" / "bad"
    bad.parent.mkdir()
    make(bad)
    good = _key_pair(tmp_path / "keys" / "good")
    message = _ssh_file_error(tmp_path, {"key": str(good)}, {"name": "web3", "key": str(bad)})
    assert message.splitlines()[1] == f"  hosts[2].key: the SSH key file {bad} {expected}"
    assert len(message.splitlines()) == 2  # ssh.key is fine


def test_an_unreadable_ssh_key_is_named(tmp_path):
    """Checked with `deploy` as the effective user: root reads any file."""
    folder = Path(tempfile.mkdtemp(prefix="atomic-deploy-unit-"))  # /tmp: deploy may enter
    try:
        folder.chmod(0o755)
        key = _key_pair(folder / "id_ed25519")  # 0600, root's
        client = _ssh_client(folder, {"key": str(key)})
        client.chmod(0o644)
        (folder / "site").chmod(0o755)
        with _effective_user("deploy"), pytest.raises(ConfigError) as info:
            load_client(client)
    finally:
        shutil.rmtree(folder)
    message = str(info.value)
    assert f"ssh.key: the SSH key file {key} cannot be read (Permission denied)" in message


@contextlib.contextmanager
def _effective_user(name: str) -> Iterator[None]:
    """Run the block with `name`'s uid and gid as the effective ones (root gets them back)."""
    user = pwd.getpwnam(name)
    os.setegid(user.pw_gid)
    os.seteuid(user.pw_uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def test_a_known_hosts_file_in_a_missing_folder_is_named(tmp_path):
    """accept-new would only fail after contacting the host, as 'Could not connect'."""
    key = _key_pair(tmp_path / "id")
    ssh = {"key": str(key), "known_hosts": "nodir/known_hosts", "host_key_policy": "accept-new"}
    message = _ssh_file_error(tmp_path, ssh)
    assert message.splitlines()[1] == (
        f"  ssh.known_hosts: the known_hosts file {tmp_path / 'nodir/known_hosts'} (given as "
        f"'nodir/known_hosts') is in a folder that does not exist ({tmp_path / 'nodir'})"
    )


def test_usable_ssh_files_and_local_hosts_pass(tmp_path):
    key = _key_pair(tmp_path / "id")
    ssh = {"key": "id", "known_hosts": "not_yet_created", "host_key_policy": "accept-new"}
    local = {"name": "@local", "key": "missing", "known_hosts": "nodir/x"}  # no SSH: unused
    client = load_client(_ssh_client(tmp_path, ssh, local))
    assert client.hosts[0]["key"] == str(key)


# --------------------------------------------------------------------------- command line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["{d}/c.yml", "deploy.py"], "pyinfra {d}/c.py deploy.py"),
        (["{d}/c.YAML", "status.py", "--dry"], "pyinfra {d}/c.py status.py --dry"),
        (
            ["-v", "--data", 'release="{d}/c.yml"', "--limit", "web1", "{d}/c.yml", "rollback.py"],
            "pyinfra -v --data 'release=\"{d}/c.yml\"' --limit web1 {d}/c.py rollback.py",
        ),
        (["{d}/c.py", "deploy.py"], None),  # the right way
        (["@local", "exec", "--", "cat", "{d}/c.yml"], None),  # a .yml, but not the inventory
    ],
)
def test_a_client_file_given_as_the_inventory_is_recognised(tmp_path, args, expected):
    for name in ("c.yml", "c.YAML", "c.py"):
        (tmp_path / name).touch()
    argv = ["/usr/bin/pyinfra", *(a.format(d=tmp_path) for a in args)]
    message = client_file_as_inventory(argv)
    if expected is None:
        assert message is None
    else:
        inventory = next(a for a in argv[1:] if a.lower().endswith((".yml", ".yaml")))
        assert message == (
            f"{inventory} is a client file, not an inventory: pass the .py beside it instead: "
            + expected.format(d=tmp_path)
        )


def test_refusing_a_client_file_as_the_inventory_exits_2_with_one_line(tmp_path, capsys):
    (tmp_path / "c.yml").touch()
    with pytest.raises(SystemExit) as info:
        refuse_client_file_as_inventory(["pyinfra", str(tmp_path / "c.yml"), "deploy.py"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"atomic-deploy: {tmp_path / 'c.yml'} is a client file") and (
        err.count("\n") == 1
    )
    refuse_client_file_as_inventory(["pyinfra", str(tmp_path / "c.py"), "deploy.py"])  # no exit
