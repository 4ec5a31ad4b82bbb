"""Shared files from the client file: key-only diffs, the config checks, and the two operations
run against a fake host (what they yield and say; the e2e tests run them for real).
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakes import FakeHost, make_deploy
from pyinfra.api import FileUploadCommand
from pyinfra.api.state import StateStage
from pyinfra.context import ctx_host, ctx_state

from operations.config import ConfigError, host_data, load_client
from operations.facts import DeployState
from operations.layout import Deploy
from operations.states.shared_sources import (
    dotenv_values,
    key_changes,
    shared_files_present,
    shared_files_uploaded,
    upload_steps,
)

SECRET = "Zq7SecretValue9"  # must never appear in anything said


# --------------------------------------------------------------------------- key-only diffs


def test_dotenv_values_reads_keys_comments_and_export():
    text = "# comment\n\nexport A=1\nB = two words \nC=\nA=3\r\n"
    assert dotenv_values(text) == {"A": "3", "B": "two words", "C": ""}


def test_a_line_that_is_not_key_value_makes_the_text_not_dotenv():
    assert dotenv_values('A="multi\nline"\n') is None
    assert dotenv_values("<?php return [];\n") is None


def test_key_changes_names_added_removed_and_changed_keys_never_values():
    old = f"KEEP=same\nGONE={SECRET}1\nDB_PASSWORD={SECRET}2\n".encode()
    new = f"KEEP=same\nDB_PASSWORD={SECRET}3\nNEW_KEY={SECRET}4\n".encode()
    said = key_changes(old, new)
    assert said == "keys added: NEW_KEY; removed: GONE; changed: DB_PASSWORD"
    assert SECRET not in said


def test_key_changes_without_added_keys_still_says_keys():
    assert key_changes(b"A=1\nB=2\n", b"A=9\n") == "keys removed: B; changed: A"


def test_key_changes_for_comments_only_and_for_other_files():
    assert "no key or value changed" in key_changes(b"A=1\n", b"# note\nA=1\n")
    assert key_changes(b"<?php return 1;\n", f"<?php return '{SECRET}';\n".encode()) == (
        "content differs"
    )
    assert key_changes(b"A=1\n", b"\xff\xfe") == "content differs"


def test_long_key_lists_are_cut():
    new = "".join(f"K{i:02}=x\n" for i in range(25)).encode()
    assert key_changes(b"", new).endswith("K19 and 5 more")


# --------------------------------------------------------------------------- the client file


def _load(tmp_path: Path, **keys: Any):
    (tmp_path / "site").mkdir(exist_ok=True)
    doc = {"source": "site", "shared_files": [".env"], "hosts": [{"name": "a"}], **keys}
    file = tmp_path / "client.yml"
    file.write_text(yaml.safe_dump(doc))
    return load_client(file)


def _error(tmp_path: Path, **keys: Any) -> str:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, **keys)
    message = str(info.value)
    assert str(tmp_path / "client.yml") in message
    return message


def test_a_shared_source_resolves_against_the_client_file(tmp_path):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "a.env").write_text("A=1\n")
    client = _load(tmp_path, shared_sources={".env": "secrets/a.env"})
    assert client.shared_sources == {".env": tmp_path / "secrets" / "a.env"}
    data = host_data(client, client.hosts[0], "abcdef123456")
    assert data["deploy"].shared_sources == ((".env", str(tmp_path / "secrets" / "a.env")),)


def test_a_shared_source_must_be_a_listed_shared_file(tmp_path):
    (tmp_path / "x.env").write_text("")
    message = _error(tmp_path, shared_sources={"app.env": "x.env"})
    assert "shared_sources: 'app.env' is not listed in shared_files (listed: .env)" in message
    message = _error(tmp_path, shared_sources={"cache": "x.env"})
    assert "shared_sources: 'cache' is a shared dir" in message


@pytest.mark.parametrize(
    ("local", "expected"),
    [("nope.env", "does not exist"), ("adir", "is not a regular file")],
)
def test_a_shared_source_must_be_a_readable_file(tmp_path, local, expected):
    (tmp_path / "adir").mkdir()
    message = _error(tmp_path, shared_sources={".env": local})
    assert f"shared_sources: '.env': {tmp_path / local} {expected}" in message


def test_a_shared_source_key_must_be_a_relative_path(tmp_path):
    message = _error(tmp_path, shared_sources={"/etc/passwd": "x"})
    assert "shared_sources: '/etc/passwd' must be a path relative" in message


# --------------------------------------------------------------------------- the operations


class _FakeHost(FakeHost):
    """A fake host that can also hand out the remote file's content."""

    def __init__(self, state: DeployState, stage=StateStage.Execute, remote: bytes = b""):
        super().__init__(state, stage, name="web2")
        self.data.update({"ssh_hostname": "10.0.0.2", "client_file": "/c.yml"})
        self.remote = remote

    def get_file(self, path, buffer, **kwargs):
        buffer.write(self.remote)
        return True


def _run(op, deploy: Deploy, fake: _FakeHost) -> list[Any]:
    with ctx_state.use(fake.state), ctx_host.use(fake):
        fake.forget_reads()
        return list(op._inner(deploy=deploy))


def _deploy(tmp_path: Path, content: str) -> Deploy:
    local = tmp_path / "local.env"
    local.write_text(content)
    return make_deploy(
        shared_dirs=("cache",), shared_files=(".env",), shared_sources={".env": str(local)}
    )


def _state(kind: str, content: str | None = None) -> DeployState:
    sums = {1: hashlib.sha256(content.encode()).hexdigest()} if content is not None else {}
    return DeployState(root="/srv/s", root_state="ok", shared=["dir", kind], shared_sums=sums)


def test_a_missing_shared_file_is_uploaded_to_a_0600_temp_then_renamed(tmp_path):
    deploy = _deploy(tmp_path, f"A={SECRET}\n")
    fake = _FakeHost(_state("missing"))
    create, upload, finish = _run(shared_files_uploaded, deploy, fake)
    tmp = "/srv/s/shared/..env.atomic-deploy-tmp"
    assert create.get_raw_value() == (
        f"mkdir -p /srv/s/shared && rm -f {tmp} && ( umask 077 && : > {tmp} )"
    )
    assert isinstance(upload, FileUploadCommand) and upload.dest == tmp
    assert upload.src.getvalue() == f"A={SECRET}\n".encode()  # from memory, never an argv
    assert finish.get_raw_value() == (
        f"{{ chmod 600 {tmp} ; }} && {{ mv -Tf {tmp} /srv/s/shared/.env ; }}"
    )
    assert fake.logged == [f"shared/.env: upload from {tmp_path / 'local.env'} (mode 0600)"]


def test_an_unchanged_shared_file_is_left_alone(tmp_path):
    deploy = _deploy(tmp_path, "A=1\n")
    fake = _FakeHost(_state("file", "A=1\n"))
    assert _run(shared_files_uploaded, deploy, fake) == []
    assert fake.logged == []


def test_a_changed_shared_file_is_described_by_key_names(tmp_path):
    deploy = _deploy(tmp_path, f"A={SECRET}x\nB=1\n")
    fake = _FakeHost(_state("file", "A=old\n"), remote=b"A=old\n")
    commands = _run(shared_files_uploaded, deploy, fake)
    assert len(commands) == 3
    assert fake.logged == [
        f"shared/.env: replace with {tmp_path / 'local.env'} (keys added: B; changed: A)"
    ]


def test_a_link_at_the_shared_file_is_not_replaced(tmp_path):
    deploy = _deploy(tmp_path, "A=1\n")
    [command] = _run(shared_files_uploaded, deploy, _FakeHost(_state("link /elsewhere")))
    assert "shared/.env is a link" in command.get_raw_value()
    assert command.get_raw_value().endswith("exit 1")
    dry = _FakeHost(_state("link /x"), StateStage.Prepare)  # a dry run says it and fails the host
    assert _run(shared_files_uploaded, deploy, dry) == []
    assert any("shared/.env is a link" in line for line in dry.logged)
    assert dry in dry.state.failed_hosts


def test_a_missing_shared_file_fails_the_host_with_how_to_provide_it(tmp_path):
    deploy = make_deploy(source="/x", shared_files=(".env",))
    state = DeployState(root="/srv/s", root_state="ok", shared=["dir"] * 3 + ["missing"])
    for stage in (StateStage.Prepare, StateStage.Execute):
        fake = _FakeHost(state, stage)
        [command] = _run(shared_files_present, deploy, fake)
        raw = command.get_raw_value()
        assert raw.endswith("exit 1")
        said = shlex.split(raw)[1]
        assert said.startswith("the deploy stops: shared/.env is missing on web2 (/srv/s)")
        assert "scp local.env deploy@10.0.0.2:/srv/s/shared/.env" in said
        assert "shared_sources: {.env: <local file>}" in said
        if stage == StateStage.Prepare:  # the dry run says it per host, in words
            assert fake.logged[0].startswith("the deploy would stop here: shared/.env is missing")


def test_a_present_or_provided_shared_file_passes(tmp_path):
    deploy = _deploy(tmp_path, "A=1\n")
    present = _state("emptyfile", "")
    assert _run(shared_files_present, deploy, _FakeHost(present)) == []
    # preparing, shared_files_uploaded has not run yet: its file counts as provided
    missing = _state("missing")
    assert _run(shared_files_present, deploy, _FakeHost(missing, StateStage.Prepare)) == []


def test_upload_commands_quote_odd_paths_and_never_expose_the_content(tmp_path):
    """The shell steps, run by a real sh; the SFTP upload is played by writing the temp file."""
    folder = tmp_path / "root $(touch pwned) 'q' ü" / "shared" / "conf `touch pwned2`"
    dest = str(folder / "a; touch pwned3.env")
    create, upload, finish = upload_steps(f"A={SECRET}\n".encode(), dest)
    for command in (create, finish):
        assert SECRET not in command.get_raw_value()  # the content is never in an argv
    subprocess.run(["sh", "-c", create.get_raw_value()], cwd=tmp_path, check=True)
    assert os.stat(upload.dest).st_mode & 0o777 == 0o600  # before any content arrives
    Path(upload.dest).write_bytes(upload.src.getvalue())
    subprocess.run(["sh", "-c", finish.get_raw_value()], cwd=tmp_path, check=True)
    assert Path(dest).read_text() == f"A={SECRET}\n"
    assert os.stat(dest).st_mode & 0o777 == 0o600
    assert sorted(p.name for p in folder.iterdir()) == ["a; touch pwned3.env"]
    assert not list(tmp_path.glob("pwned*"))


def test_a_local_file_gone_since_the_check_stops_the_host_with_its_name(tmp_path):
    deploy = _deploy(tmp_path, "A=1\n")
    (tmp_path / "local.env").unlink()
    [command] = _run(shared_files_uploaded, deploy, _FakeHost(_state("missing")))
    assert f"cannot read {tmp_path / 'local.env'} for shared/.env" in command.get_raw_value()


def test_a_folder_at_the_shared_file_is_not_replaced(tmp_path):
    deploy = _deploy(tmp_path, "A=1\n")
    [command] = _run(shared_files_uploaded, deploy, _FakeHost(_state("emptydir")))
    assert "shared/.env is a folder; shared_sources only replaces a regular file" in (
        command.get_raw_value()
    )
