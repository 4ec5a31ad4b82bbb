"""Without a host: the local copies of database.download (names, retention, the completeness
check, the download's temp-then-rename) and its configuration.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from support.site import SiteRepo

from operations.config import ConfigError, host_data, load_client
from operations.database import Database
from operations.dump_download import (
    Download,
    check_copy,
    copy_name,
    download,
    local_copies,
    to_prune,
)


def _db(**kw) -> Database:
    return Database(**{"name": "craft", "dir": "backups", "max_age": None, "keep": 3, **kw})


DUMP_A = "craft-20260101T000000Z-aaaaaaa.sql.gz"
DUMP_B = "craft-20260102T000000Z-bbbbbbb.sql.gz"
DUMP_C = "craft-20260103T000000Z-ccccccc.sql.gz"


def test_local_copies_are_this_hosts_and_databases_only():
    names = [
        copy_name("web1", DUMP_B), copy_name("web1", DUMP_A), copy_name("web2", DUMP_A),
        "web1--craft2-20260101T000000Z-aaaaaaa.sql.gz", "notes.txt", f"web1--{DUMP_C}.part",
        f".tmp-web1--{DUMP_C}", f".tmp-web2--{DUMP_C}",
    ]  # fmt: skip
    found = local_copies(names, "web1", _db())
    assert found.copies == [f"web1--{DUMP_A}", f"web1--{DUMP_B}"]  # oldest first
    assert found.leftovers == [f".tmp-web1--{DUMP_C}"]


def test_retention_keeps_the_newest_n_and_never_the_incoming_copy():
    db = _db(download_keep=2)
    found = local_copies([f"web1--{DUMP_A}", f"web1--{DUMP_B}"], "web1", db)
    assert to_prune(found, f"web1--{DUMP_C}", "web1", db) == [f"web1--{DUMP_A}"]
    # an older dump fetched again (its copy was lost) is not removed right after
    found = local_copies([f"web1--{DUMP_B}", f"web1--{DUMP_C}"], "web1", db)
    assert to_prune(found, f"web1--{DUMP_A}", "web1", db) == []
    assert to_prune(found, None, "web1", _db(download_keep=1)) == [f"web1--{DUMP_B}"]


def _dump_bytes(trailer: bool = True) -> bytes:
    text = "-- MariaDB dump\nINSERT INTO t VALUES (1);\n"
    return gzip.compress((text + ("-- Dump completed on 2026-01-01\n" if trailer else "")).encode())


def test_check_copy_accepts_only_a_complete_dump(tmp_path):
    good = tmp_path / "good.sql.gz"
    good.write_bytes(_dump_bytes())
    assert check_copy(str(good), good.stat().st_size) is None
    assert "bytes arrived" in check_copy(str(good), good.stat().st_size + 1)

    cut = tmp_path / "cut.sql.gz"
    cut.write_bytes(_dump_bytes()[:-10])
    assert "damaged or cut short" in check_copy(str(cut), cut.stat().st_size)

    bare = tmp_path / "bare.sql.gz"
    bare.write_bytes(_dump_bytes(trailer=False))
    assert "Dump completed" in check_copy(str(bare), bare.stat().st_size)


class _Host:
    """Just what `download` uses of a pyinfra Host: the recorded size, the SFTP get."""

    name = "web1"

    def __init__(self, content: bytes, recorded: int):
        self.content, self.recorded, self.logged = content, recorded, []

    def run_shell_command(self, command, **kwargs):
        return True, SimpleNamespace(stdout_lines=[str(self.recorded)])

    def get_file(self, remote, out):
        out.write(self.content)
        return True

    def log(self, message, log_func=None):
        self.logged.append(message)

    def log_styled(self, message, log_func=None, **styles):
        self.logged.append(message)


_STATE = SimpleNamespace(print_output=False, print_input=False)


def test_download_renames_only_a_verified_copy_private_in_a_private_folder(tmp_path):
    folder = tmp_path / "copies"
    old = f"web1--{DUMP_A}"
    job = Download(f"/srv/site/backups/{DUMP_B}", str(folder), f"web1--{DUMP_B}", (old,))
    folder.mkdir(mode=0o755)
    (folder / old).write_bytes(b"older")
    content = _dump_bytes()
    assert download(_STATE, _Host(content, len(content)), job, "dump craft")
    assert sorted(os.listdir(folder)) == [f"web1--{DUMP_B}"]
    assert (folder / f"web1--{DUMP_B}").read_bytes() == content
    assert (folder / f"web1--{DUMP_B}").stat().st_mode & 0o777 == 0o600
    assert folder.stat().st_mode & 0o777 == 0o700


def test_a_partial_download_leaves_no_file_and_removes_nothing(tmp_path):
    folder = tmp_path / "copies"
    old = f"web1--{DUMP_A}"
    job = Download(f"/srv/site/backups/{DUMP_B}", str(folder), f"web1--{DUMP_B}", (old,))
    content = _dump_bytes()
    host = _Host(content[: len(content) // 2], len(content))  # the connection dropped midway
    folder.mkdir()
    (folder / old).write_bytes(b"older")
    assert not download(_STATE, host, job, "dump craft")
    assert sorted(os.listdir(folder)) == [old]  # no copy, no temp file, the older one kept
    assert "not complete" in host.logged[-1] and "not kept" in host.logged[-1]


def _client_file(tmp_path: Path, database: dict, hosts=None) -> Path:
    site = SiteRepo.create(tmp_path / "site")
    yml = tmp_path / "inv" / "client.yml"
    yml.parent.mkdir()
    doc = {"source": str(site.path), "database": database,
           "hosts": hosts or [{"name": "web1", "hostname": "127.0.0.1"}]}  # fmt: skip
    yml.write_text(yaml.safe_dump(doc))
    return yml


def test_the_download_folder_is_relative_to_the_client_file(tmp_path):
    yml = _client_file(tmp_path, {"name": "craft", "download": {"dir": "../copies/client1"}})
    client = load_client(yml)
    db = host_data(client, client.hosts[0], "a" * 12)["database"]
    assert db.download_dir == str(tmp_path / "copies" / "client1") and db.download_keep == 10
    assert db.max_age is None  # the default: a dump before every switch
    assert not (tmp_path / "copies").exists()  # loading the client creates nothing


def test_a_download_folder_that_cannot_be_created_is_refused_naming_the_key(tmp_path):
    (tmp_path / "a-file").write_text("x")
    yml = _client_file(
        tmp_path,
        {"name": "craft"},
        hosts=[
            {"name": "web1", "hostname": "127.0.0.1"},
            {"name": "web2", "hostname": "127.0.0.1",
             "database": {"download": {"dir": "../a-file/x"}}},
        ],
    )  # fmt: skip
    with pytest.raises(ConfigError) as e:
        load_client(yml)
    assert f"hosts[1].database.download.dir: {tmp_path / 'a-file'} is not a folder" in str(e.value)


@pytest.mark.parametrize(
    ("download", "message"),
    [
        ({"keep": 3}, "missing required key 'dir'"),
        ({"dir": "x", "keep": 0}, "download.keep: 0 is less than the minimum of 1"),
        ({"dir": "x", "kep": 3}, "unknown key 'kep' (did you mean 'keep'?)"),
    ],
)
def test_bad_download_settings_name_the_key(tmp_path, download, message):
    yml = _client_file(tmp_path, {"name": "craft", "download": download})
    with pytest.raises(ConfigError) as e:
        load_client(yml)
    assert message in str(e.value)
