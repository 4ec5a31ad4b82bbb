"""The client description: one YAML file per client, validated before any host is contacted.

`inventories/<client>.py` is two lines: it calls `inventory_hosts(__file__)`, which reads the
sibling `<client>.yml`, checks it against `schema/client.schema.json` plus the rules a schema
cannot say, names the release, and returns pyinfra's host list with everything deploy.py needs
as host data.
"""

from __future__ import annotations

import copy
import difflib
import getpass
import json
import os
import shlex
import shutil
import socket
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jsonschema
import paramiko
import yaml
from pyinfra.api.exceptions import PyinfraError

from . import presets
from . import pyinfra_adapter as adapter
from .common import cli_run_rules
from .database import Database, parse_max_age, remember_password
from .layout import (
    CACHE_DIR,
    CURRENT_LINK,
    META_DIR,
    NO_RELEASE,
    RELEASES_DIR,
    SHARED_DIR,
    Deploy,
    Layout,
)
from .live import Health, Hooks, hook_errors, uploads_source
from .release_name import ReleaseError, check_release_value, resolve_release
from .ssh_master import open_masters
from .states.php_reload import MODES, PhpRefresh, php_errors
from .states.shared import config_errors as shared_path_errors
from .states.writable import config_errors as writable_dir_errors
from .upload import Spec, UploadError, UploadSet, prepare

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schema" / "client.schema.json"
MAX_FILE_BYTES = 256 * 1024  # a client file is a screenful; anything bigger is a mistake
MAX_DEPTH = 16
MAX_NODES = 20_000  # values, counted with aliases expanded

# Messages for schema keywords whose default wording shows a regex instead of a reason.
_PATTERN_HINTS = {
    "relpath": "must be a path relative to the release: no leading '/', no '..' or '.' parts, "
    "no empty parts, no newline",
    "root": "must be an absolute path other than '/', without '.' or '..' parts, '//', a "
    "trailing '/' or a newline",
    "name": "must be letters, digits, '_', '.', '-' (not starting with '.' or '-')",
    "pattern": "must be a non-empty rsync pattern without newlines",
    "php_binary": "must be a command name or path: letters, digits, '_', '.', '/', '+', '-'",
    "dbname": "must be letters, digits, '_', '$', '-' (at most 64, not starting with '-')",
    # inline patterns, by key
    "key:name": "must be '@local' or letters, digits, '_', '.', ':', '-' (not starting with "
    "'.', ':' or '-')",
    "key:hostname": "must be a host name or IP address: letters, digits, '_', '.', ':', '-'",
    "duration": "must be a number and a unit: s, m, h or d (e.g. 30m, 1h, 2d)",
    "hostfile": "must be an absolute path or start with ~/ (a file on the host), no newline",
    "abspath": "must be an absolute path without newlines",
    "url": "must be an http:// or https:// URL: host name or [IPv6], optional port and path, "
    "no query, quotes or spaces",
}

# Keys refused with a reason rather than "unknown key".
_FORBIDDEN_KEYS = {
    "password": "a plain password is not allowed in the client file: use password_env (an "
    "environment variable on the machine running pyinfra) or defaults_file (an option file on "
    "the host, e.g. ~/.my.cnf)",
}


class ConfigError(PyinfraError):
    """The client description is invalid; the message names the file and the key."""


@dataclass(frozen=True)
class Client:
    """A validated client description, the schema's defaults filled in (none of its own)."""

    file: Path
    source: Path
    exclude: tuple[str, ...]
    docroot: str
    shared_dirs: tuple[str, ...]
    shared_files: tuple[str, ...]
    keep_releases: int
    allow_dirty: bool
    build_commands: tuple[str, ...]
    build_output: tuple[str, ...]
    copy_mode: str
    shared_mode: str | None
    shared_group: str | None
    writable_dirs: tuple[str, ...]
    writable_mode: str | None
    writable_group: str | None
    # One per host: its SSH settings, root and database section (its own keys over the
    # client's, defaults filled), as host_data() turns them into pyinfra host data.
    hosts: list[dict[str, Any]]
    hooks: Hooks
    health: Health | None  # None: no health check
    php: PhpRefresh | None  # None: no after-switch step (php_reload.py)
    webhook: str | None  # notify.webhook; None: no notifications
    shared_sources: dict[str, Path]  # shared file -> local file
    # One line per key the client file sets other than its preset (shown by a dry run).
    preset_differs: tuple[str, ...] = ()


def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def _filling_defaults(cls: type[jsonschema.protocols.Validator]) -> Any:
    """`cls`, extended to set each missing key that has a schema "default" while validating.

    From the jsonschema FAQ ("Why doesn't my schema's default property set the default on my
    instance?"). A default is filled before its object's properties are checked, so nested
    defaults (health.retries, database.max_age) are filled too, also inside a filled default
    (ssh: {} gets ssh.host_key_policy).
    """
    check_properties = cls.VALIDATORS["properties"]

    def properties(validator: Any, spec: dict, instance: Any, schema: dict) -> Any:
        if validator.is_type(instance, "object"):
            for key, sub in spec.items():
                if "default" in sub:
                    instance.setdefault(key, copy.deepcopy(sub["default"]))
        yield from check_properties(validator, spec, instance, schema)

    return jsonschema.validators.extend(cls, {"properties": properties})


FillingValidator = _filling_defaults(jsonschema.Draft202012Validator)


def _key_path(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _describe(error: jsonschema.ValidationError, defs: dict[str, Any]) -> str:
    """One line for a schema error: the key path and what is wrong, in words."""
    where = _key_path(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in allowed]
        parts = []
        for key in [k for k in extra if k in _FORBIDDEN_KEYS]:
            return f"{_key_path([*error.absolute_path, key])}: {_FORBIDDEN_KEYS[key]}"
        for key in extra:
            close = difflib.get_close_matches(str(key), allowed, n=2, cutoff=0.6)
            hint = " (did you mean " + " or ".join(f"'{c}'" for c in close) + "?)" if close else ""
            parts.append(f"unknown key '{key}'{hint}")
        return f"{where}: {'; '.join(parts)}; allowed keys: {', '.join(allowed)}"
    if error.validator == "pattern":
        ref = next((name for name, d in defs.items() if d == error.schema), None)
        key = f"key:{error.absolute_path[-1]}" if error.absolute_path else ""
        hint = _PATTERN_HINTS.get(ref or "") or _PATTERN_HINTS.get(
            key, f"must match {error.validator_value}"
        )
        return f"{where}: {error.instance!r} {hint}"
    if error.validator == "required":
        return f"{where}: missing required key {error.message.split()[0]}"
    return f"{where}: {error.message}"


def _control_char_errors(value: Any, path: tuple = ()) -> list[tuple[str, str]]:
    """(key path, message) for each string value holding a newline, carriage return or NUL.

    No value of a client file may: they would end up in paths, names and host commands.
    """
    if isinstance(value, dict):
        return [e for k, v in value.items() for e in _control_char_errors(v, (*path, k))]
    if isinstance(value, list):
        return [e for i, v in enumerate(value) for e in _control_char_errors(v, (*path, i))]
    if isinstance(value, str) and any(c in value for c in "\n\r\0"):
        where = _key_path(path)
        message = f"{where}: {value!r} contains a newline, carriage return or NUL; use one line"
        return [(where, message)]
    return []


def _too_complex(doc: Any) -> str | None:
    """Why `doc` is too deep or too big once aliases are expanded, else None.

    Bounded work: YAML aliases make a small file a huge tree ("billion laughs"), so this stops
    after MAX_NODES values instead of walking it all.
    """
    stack, seen = [(doc, 0)], 0
    while stack:
        value, level = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            return f"more than {MAX_NODES} values once anchors and aliases are expanded"
        if level > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels"
        if isinstance(value, dict):
            stack.extend((v, level + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, level + 1) for v in value)
    return None


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that records every key given twice in one mapping, with its lines.

    YAML allows a repeated key and PyYAML silently keeps the last value, so a forgotten
    earlier `keep_releases:` would quietly lose. Keys that arrive through a merge key
    (`<<: *anchor`) and are then overridden explicitly are not repeats: that is what merge
    keys are for.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.repeated: list[str] = []  # one message per repeated key, in document order
        self._paths: dict[int, tuple] = {}  # id(node) -> key path of its first occurrence
        self._checked: set[int] = set()

    def construct_document(self, node: yaml.Node) -> Any:
        self._paths = _node_paths(node)
        return super().construct_document(node)

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        # The first step of SafeConstructor.construct_mapping, and the one place that sees
        # every mapping before merged pairs are prepended to it (it also flattens a merge
        # source that has not been constructed yet, in place): so the check lives here.
        if id(node) not in self._checked:
            self._checked.add(id(node))
            self.repeated += self._repeated_keys(node)
        super().flatten_mapping(node)

    def _repeated_keys(self, node: yaml.MappingNode) -> list[str]:
        lines: dict[Any, list[int]] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(
                key_node, yaml.ScalarNode
            ):
                continue
            key = self.construct_object(key_node)  # `1` and `0x1` are the same key
            lines.setdefault(key, []).append(key_node.start_mark.line + 1)
        out = []
        for key, at in lines.items():
            if len(at) > 1:
                where = _key_path([*self._paths.get(id(node), ()), str(key)])
                times = "twice" if len(at) == 2 else f"{len(at)} times"
                if len(set(at)) == 1:  # a flow mapping: {a: 1, a: 2}
                    lines_text = f"line {at[0]}"
                else:
                    lines_text = "lines " + ", ".join(map(str, at[:-1])) + f" and {at[-1]}"
                out.append(f"{where} is given {times} ({lines_text})")
        return out


def _node_paths(root: yaml.Node) -> dict[int, tuple]:
    """id(node) -> key path, for every node of a composed document (first occurrence wins).

    Iterative, and each node is visited once: an alias is the same node object, so a file
    whose aliases expand to millions of values is still walked in linear time.
    """
    paths: dict[int, tuple] = {}
    stack: list[tuple[yaml.Node, tuple]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if id(node) in paths:
            continue
        paths[id(node)] = path
        if isinstance(node, yaml.MappingNode):
            children = [
                (value, (*path, key.value if isinstance(key, yaml.ScalarNode) else "?"))
                for key, value in node.value
            ]
        elif isinstance(node, yaml.SequenceNode):
            children = [(value, (*path, i)) for i, value in enumerate(node.value)]
        else:
            continue
        stack.extend(reversed(children))  # popped in document order
    return paths


def _load_yaml(file: Path, text: str) -> Any:
    """yaml.safe_load, refusing a key given twice in one mapping (naming its lines)."""
    loader = _UniqueKeyLoader(text)
    try:
        doc = loader.get_single_data()
    finally:
        loader.dispose()
    if len(loader.repeated) == 1:
        raise ConfigError(f"{file}: {loader.repeated[0]}")
    if loader.repeated:
        raise ConfigError(f"{file}:\n  " + "\n  ".join(loader.repeated))
    return doc


def read_document(file: Path) -> dict[str, Any]:
    """Parse the YAML file into a mapping, bounded in size (merge keys yes, repeated keys no)."""
    try:
        size = file.stat().st_size
    except OSError as e:
        raise ConfigError(f"{file}: cannot read: {e.strerror}") from None
    if size > MAX_FILE_BYTES:
        raise ConfigError(f"{file}: {size} bytes is too large for a client file (limit 256 KiB)")
    try:
        doc = _load_yaml(file, file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"{file}: not valid YAML: {e}") from None
    if not isinstance(doc, dict):
        kind = "empty" if doc is None else f"a {type(doc).__name__}"
        raise ConfigError(f"{file}: the document is {kind}; expected a mapping of keys")
    problem = _too_complex(doc)
    if problem:
        raise ConfigError(f"{file}: {problem}; a client file is a screenful")
    return doc


def _semantic_errors(doc: dict[str, Any], raw: dict[str, Any]) -> list[str]:
    """Rules the schema cannot express; `doc` has the defaults filled in, `raw` is as written."""
    errors = []
    names = [h["name"] for h in doc["hosts"]]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        errors.append(f"hosts: the name '{dup}' is used more than once")
    docroot = doc["docroot"]
    errors += shared_path_errors(doc)
    errors += writable_dir_errors(doc)
    errors += hook_errors(doc)
    client_db = doc.get("database")
    top = _database_errors(client_db, "database", docroot) if client_db is not None else []
    errors += top
    for i, entry in enumerate(raw["hosts"]):
        if "database" not in entry:
            continue
        where = f"hosts[{i}].database"
        if client_db is None and "name" not in entry["database"]:
            errors.append(f"{where}: missing required key 'name' (there is no top-level database)")
            continue
        for error in _database_errors(_host_database(doc, raw, i), where, docroot):
            if "database" + error.removeprefix(where) not in top:  # said once, at the top
                errors.append(error)
    errors += php_errors(raw.get("php"))
    if "craft" in raw and raw.get("preset") != "craft":
        errors.append("craft: these are options of the craft preset; add preset: craft")
    return errors


def _host_database(doc: dict[str, Any], raw: dict[str, Any], i: int) -> dict[str, Any] | None:
    """hosts[i]'s database section, defaults filled: the keys it gives over the client's.

    The host's keys as written (`raw`): its filled-in defaults must not hide the client's values.
    """
    client_db = doc.get("database")
    if client_db is None:
        return doc["hosts"][i].get("database")
    return {**client_db, **raw["hosts"][i].get("database", {})}


def _database_errors(db: dict[str, Any], where: str, docroot: str) -> list[str]:
    """A database section's rules beyond the schema (credentials, where dumps may live)."""
    errors = []
    if "password_env" in db and "defaults_file" in db:
        errors.append(f"{where}: give password_env or defaults_file, not both")
    if "socket" in db and ("host" in db or "port" in db):
        errors.append(f"{where}: give socket or host/port, not both")
    folder = db["dir"]
    first = folder.split("/", 1)[0]
    if first == docroot:
        errors.append(
            f"{where}.dir: '{folder}' is inside the docroot '{docroot}', which the web server "
            "serves; dumps must not be downloadable"
        )
    elif first in (CACHE_DIR, RELEASES_DIR, SHARED_DIR, META_DIR, CURRENT_LINK):
        errors.append(
            f"{where}.dir: '{folder}' is inside '{first}', which atomic-deploy manages (and "
            "releases and shared paths can be served); use e.g. 'backups'"
        )
    return errors


def load_client(file: str | Path) -> Client:
    """Read and validate a client description; raise ConfigError naming file and key.

    Validation fills in the schema's defaults (FillingValidator): they are written only there.
    """
    file = Path(file).resolve()
    schema = _schema()
    # The preset's keys count as written by the client (the one place a preset applies):
    # they are checked like the client's own, and defaults fill only what both left out.
    raw, preset_differs = presets.apply(read_document(file), set(schema["properties"]))
    doc = copy.deepcopy(raw)
    errors = sorted(FillingValidator(schema).iter_errors(doc), key=lambda e: list(map(str, e.path)))
    # A schema pattern's '$' also matches before a final newline: control characters are
    # refused here, for every value, and their pattern errors are not repeated.
    control = _control_char_errors(raw)
    problems = [m for _, m in control] + [
        _describe(e, schema["$defs"])
        for e in errors
        if _key_path(e.absolute_path) not in {where for where, _ in control}
    ]
    if not problems:
        problems = _semantic_errors(doc, raw)
    if problems:
        raise ConfigError(f"{file}:\n  " + "\n  ".join(problems))

    base = file.parent
    source = (base / Path(doc["source"]).expanduser()).resolve()
    if not source.is_dir():
        raise ConfigError(f"{file}: source: {source} is not a folder")
    sources = {path: _shared_source(file, path, local) for path, local
               in doc["shared_sources"].items()}  # fmt: skip
    hosts = []
    for i, entry in enumerate(doc["hosts"]):
        # The top-level root is every host's default (it used to be accepted and ignored).
        host = {**doc["ssh"], **({"root": doc["root"]} if "root" in doc else {}),
                "php_binary": doc["php_binary"], **entry}  # fmt: skip
        host.pop("database", None)
        database = _host_database(doc, raw, i)
        if database is not None:
            if "download" in database:
                own = "download" in raw["hosts"][i].get("database", {})
                where = f"hosts[{i}].database" if own else "database"
                download = database["download"]
                folder = _download_folder(file, f"{where}.download.dir", download["dir"])
                database = {**database, "download": {**download, "dir": str(folder)}}
            host["database"] = database
        for key in ("key", "known_hosts"):
            if key in host:
                host[key] = str((base / Path(host[key]).expanduser()).resolve())
        hosts.append(host)
    problems = ssh_file_errors(doc, hosts)
    if problems:
        raise ConfigError(f"{file}:\n  " + "\n  ".join(problems))
    php = doc.get("php")
    return Client(
        file=file,
        source=source,
        exclude=tuple(doc["exclude"]),
        docroot=doc["docroot"],
        shared_dirs=tuple(doc["shared_dirs"]),
        shared_files=tuple(doc["shared_files"]),
        keep_releases=doc["keep_releases"],
        copy_mode=doc["copy_mode"],
        shared_mode=doc.get("shared_mode"),
        shared_group=doc.get("shared_group"),
        writable_dirs=tuple(doc["writable_dirs"]),
        writable_mode=doc.get("writable_mode"),
        writable_group=doc.get("writable_group"),
        allow_dirty=doc["allow_dirty"],
        build_commands=tuple(doc["build"]["commands"]),
        build_output=tuple(doc["build"]["output"]),
        hosts=hosts,
        hooks=Hooks.from_section(
            doc["hooks"], php_binary=doc["php_binary"], maintenance=doc["maintenance"]
        ),
        health=Health(**doc["health"]) if "health" in doc else None,
        php=_php(php) if php and php["after_switch"] in MODES else None,
        webhook=doc["notify"]["webhook"] if "notify" in doc else None,
        shared_sources=sources,
        preset_differs=tuple(preset_differs),
    )


def _php(php: dict[str, Any]) -> PhpRefresh:
    """The after-switch step of a (filled) php section whose after_switch is not 'off'."""
    url = php.get("url")
    return PhpRefresh(
        mode=php["after_switch"],
        connect_to=php["connect_to"],
        timeout=php["timeout"],
        reload_command=php.get("reload_command"),
        url=url.rstrip("/") if url else None,
    )


def _database(db: dict[str, Any]) -> Database:
    """A host's (merged, filled) database section; the schema allows exactly its fields."""
    fields = {k: v for k, v in db.items() if k not in ("download", "max_age")}
    download = db.get("download") or {}
    return Database(
        **fields,
        max_age=parse_max_age(db["max_age"]) if "max_age" in db else None,
        download_dir=download.get("dir"),
        download_keep=download.get("keep"),
    )


def _shared_source(file: Path, path: str, local: str) -> Path:
    """The local file that provides shared/<path>: must be a readable regular file.

    Checked here, before any host is contacted, so a typo never becomes a half-done deploy.
    """
    where = f"{file}: shared_sources: '{path}'"
    full = (file.parent / Path(local).expanduser()).resolve()
    if not full.exists():
        raise ConfigError(f"{where}: {full} does not exist (paths are relative to {file.parent})")
    if not full.is_file():
        raise ConfigError(f"{where}: {full} is not a regular file")
    try:
        with full.open("rb") as f:
            f.read(1)
    except OSError as e:
        raise ConfigError(f"{where}: cannot read {full}: {e.strerror}") from None
    return full


def _download_folder(file: Path, where: str, folder: str) -> Path:
    """The local folder dumps are downloaded to (relative to the client file): absolute.

    Checked here, before any host is contacted: it must be a folder this user may write, or
    creatable as one (the download creates it, mode 0700); a dry run creates nothing.
    """
    full = (file.parent / Path(folder).expanduser()).resolve()
    existing = full
    while not existing.exists():
        existing = existing.parent
    problem = None
    if not existing.is_dir():
        problem = f"{existing} is not a folder, so {full} cannot be created"
    elif not os.access(existing, os.W_OK | os.X_OK):
        action = "write in" if existing == full else f"create {full} in"
        problem = f"this user may not {action} {existing}"
    if problem:
        raise ConfigError(f"{file}: {where}: {problem} (paths are relative to {file.parent})")
    return full


def ssh_file_errors(doc: dict[str, Any], hosts: list[dict[str, Any]]) -> list[str]:
    """One message per SSH key or known_hosts file (given in `doc`) that ssh could not use.

    `hosts` are the merged entries of `doc["hosts"]` with paths resolved. pyinfra reads the key
    only when it connects, and a missing or wrong one then ends in a traceback; a known_hosts
    file in a folder that does not exist fails (accept-new) only after the host was contacted,
    as "Could not connect". A path under `ssh:` is named once, not once per host.
    """
    errors: dict[str, str] = {}  # key path -> message
    for i, (entry, host) in enumerate(zip(doc["hosts"], hosts, strict=True)):
        if host["name"].startswith("@local"):  # no SSH
            continue
        for key, what, problem_of in (
            ("key", "the SSH key file", _key_file_problem),
            ("known_hosts", "the known_hosts file", _known_hosts_problem),
        ):
            if key not in host:
                continue
            where = f"hosts[{i}].{key}" if key in entry else f"ssh.{key}"
            problem = problem_of(Path(host[key]))
            if problem and where not in errors:
                given = entry[key] if key in entry else doc["ssh"][key]
                as_given = "" if given == host[key] else f" (given as {given!r})"
                errors[where] = f"{where}: {what} {host[key]}{as_given} {problem}"
    return list(errors.values())


def _key_file_problem(path: Path) -> str | None:
    """What makes `path` unusable as an SSH private key file, or None."""
    if not path.exists():
        return "does not exist"
    if path.is_dir():
        return "is a folder, not a private key file"
    if not path.is_file():
        return "is not a regular file"
    try:
        with path.open("rb") as f:
            head = f.read(64 * 1024).decode("latin-1")
    except OSError as e:
        return f"cannot be read ({e.strerror})"
    # paramiko (and so pyinfra) loads PEM/OpenSSH keys: "-----BEGIN ... PRIVATE KEY-----"
    if "PRIVATE KEY-----" in head:
        return None
    if head.startswith(("ssh-", "ecdsa-", "sk-")):
        return "is a public key: give the private key (the same name without .pub)"
    return "is not an SSH private key (expected a '-----BEGIN ... PRIVATE KEY-----' file)"


def _known_hosts_problem(path: Path) -> str | None:
    """What makes `path` unusable as a known_hosts file, or None.

    A missing file is fine here: accept-new creates it, and host_key_errors explains it for a
    strict host.
    """
    if not path.parent.is_dir():
        return f"is in a folder that does not exist ({path.parent})"
    if path.exists() and not path.is_file():
        return "is a folder, not a known_hosts file" if path.is_dir() else "is not a regular file"
    return None


def cli_data(argv: list[str]) -> dict[str, str]:
    """The raw `--data key=value` pairs of a pyinfra command line.

    The inventory is loaded before pyinfra applies them, so reading them here lets a bad
    release name fail before any host is contacted.
    """
    out: dict[str, str] = {}
    for i, arg in enumerate(argv):
        if arg == "--data" and i + 1 < len(argv):
            pair = argv[i + 1]
        elif arg.startswith("--data="):
            pair = arg[len("--data=") :]
        else:
            continue
        key, sep, value = pair.partition("=")
        if sep:
            out[key] = value
    return out


def client_file_as_inventory(argv: list[str]) -> str | None:
    """The message for a pyinfra command line whose inventory is a client file, else None.

    `pyinfra inventories/client1.yml deploy.py` is an easy slip (the YAML is the file one
    edits), and pyinfra 3.10 execs any existing inventory path as Python
    (pyinfra_cli.inventory.make_inventory_from_files), which ends in a SyntaxError
    traceback. Nothing of ours runs before that except the repo's config.py, which pyinfra
    execs from the working directory just before it loads the inventory
    (pyinfra_cli.cli._main: _set_config, then make_inventory); config.py gets no arguments,
    so this reads the command line, parsed by pyinfra's own click command.
    """
    inventory = adapter.cli_inventory(argv)
    if not inventory or Path(inventory).suffix.lower() not in (".yml", ".yaml"):
        return None
    beside = str(Path(inventory).with_suffix(".py"))
    if not Path(beside).is_file():
        return (
            f"{inventory} is a client file, not an inventory: pyinfra needs the .py beside it, "
            f"and {beside} does not exist; create it with the two lines of "
            "inventories/client1.py"
        )
    args = [beside if arg == inventory else arg for arg in argv[1:]]
    return (
        f"{inventory} is a client file, not an inventory: pass the .py beside it instead: "
        f"{shlex.join(['pyinfra', *args])}"
    )


def refuse_client_file_as_inventory(argv: list[str] | None = None) -> None:
    """Stop the run, with our message only, if its inventory is a client file (see above)."""
    message = client_file_as_inventory(adapter.command_line() if argv is None else argv)
    if message:
        print(f"atomic-deploy: {message}", file=sys.stderr)
        raise SystemExit(2)



def host_data(
    client: Client, host: dict[str, Any], release: str | None, upload: UploadSet | None = None
) -> dict[str, Any]:
    """pyinfra host data for one host: SSH settings, and the typed settings the runs read.

    `deploy`, `database`, `hooks`, `health`, `php` (see run.HostRun) are built here, once;
    `release` is the release the inventory named (None for rollback, status, restore, where
    `--data release` may name one; live.deploy_for puts it into `deploy`). `upload` is the
    staged upload set of a deploy. Never a password (see database.remember_password).
    """
    deploy = Deploy(
        layout=Layout(
            root=host.get("root"),  # None: the SSH user's home, found on the host
            docroot=client.docroot,
            shared_dirs=client.shared_dirs,
            shared_files=client.shared_files,
            writable_dirs=client.writable_dirs,
        ),
        release=release or NO_RELEASE,
        source=str(upload.folder) if upload else str(client.source),
        exclude=client.exclude + (upload.excludes if upload else ()),
        keep_releases=client.keep_releases,
        deployed_by=f"{getpass.getuser()}@{socket.gethostname()}",
        copy_mode=client.copy_mode,
        shared_sources=tuple(sorted((p, str(local)) for p, local in client.shared_sources.items())),
        shared_mode=client.shared_mode,
        shared_group=client.shared_group,
        writable_mode=client.writable_mode,
        writable_group=client.writable_group,
        digest=upload.digest if upload else None,
        checkout=str(client.source),
    )
    data: dict[str, Any] = {
        "release": release,
        "client_file": str(client.file),
        "deploy": deploy,
        "database": _database(host["database"]) if "database" in host else None,
        "hooks": replace(client.hooks, php_binary=host.get("php_binary", client.hooks.php_binary)),
        "health": client.health,
        "php": client.php,
        "webhook": client.webhook,
    }
    if host["name"].startswith("@local"):
        return data
    policy = host["host_key_policy"]
    data["ssh_strict_host_key_checking"] = "yes" if policy == "strict" else "accept-new"
    for key, pyinfra_key in (
        ("hostname", "ssh_hostname"),
        ("port", "ssh_port"),
        ("user", "ssh_user"),
        ("key", "ssh_key"),
        ("known_hosts", "ssh_known_hosts_file"),
    ):
        if key in host:
            data[pyinfra_key] = host[key]
    return data


def read_passwords(
    client: Client, environ: dict[str, str] | os._Environ[str] | None = None
) -> dict[str, str]:
    """Host name -> database password, read from the environment variables the client names.

    Raises ConfigError (before any host is contacted) when a variable is unset or empty.
    """
    environ = os.environ if environ is None else environ
    out = {}
    for i, host in enumerate(client.hosts):
        name = (host.get("database") or {}).get("password_env")
        if not name:
            continue
        value = environ.get(name)
        if not value:
            state = "is empty" if value == "" else "is not set"
            raise ConfigError(
                f"{client.file}: hosts[{i}] ({host['name']}): database.password_env: "
                f"the environment variable {name} {state} on this machine"
            )
        out[host["name"]] = value
    return out


def _user_ssh_config(address: str) -> dict[str, Any]:
    """What ~/.ssh/config says for `address` (pyinfra honours its HostName, Port, known hosts)."""
    path = Path("~/.ssh/config").expanduser()
    if not path.is_file():
        return {}
    config = paramiko.SSHConfig()
    with path.open(encoding="utf-8") as f:
        config.parse(f)
    return dict(config.lookup(address))


def host_key_errors(client: Client) -> list[str]:
    """One message per strict host whose key is not in its known_hosts file yet.

    pyinfra would refuse such a host when connecting, with a message that does not say how to
    fix it; checking before any connection also keeps the other hosts untouched. Looks the
    host up the way pyinfra (paramiko) does: `host` on port 22, else `[host]:port`, hashed
    entries included. A changed key can only be seen when connecting (pyinfra then says
    "REMOTE HOST IDENTIFICATION HAS CHANGED").
    """
    errors = []
    for i, host in enumerate(client.hosts):
        if host["name"].startswith("@local") or host.get("host_key_policy", "strict") != "strict":
            continue
        address = host.get("hostname") or host["name"]
        options = _user_ssh_config(address)
        address = options.get("hostname", address)
        port = int(host.get("port") or options.get("port", 22))
        if "known_hosts" in host:
            files = [host["known_hosts"]]
        else:
            default = options.get("userknownhostsfile", "~/.ssh/known_hosts")
            files = [os.path.expanduser(f) for f in default.split()]
        entry = address if port == 22 else f"[{address}]:{port}"
        keys = paramiko.HostKeys()
        unreadable = []
        for known in files:
            try:
                keys.load(known)
            except (OSError, paramiko.SSHException) as e:
                unreadable.append(f"{known} ({getattr(e, 'strerror', None) or e})")
        if keys.lookup(entry):
            continue
        scan = f"ssh-keyscan{'' if port == 22 else f' -p {port}'} {address}"
        where = f"hosts[{i}] ({host['name']})"
        what = f"cannot read {', '.join(unreadable)}; " if unreadable else ""
        errors.append(
            f"{where}: known_hosts: {what}no key for {entry} in {' '.join(files)}, and "
            "host_key_policy is 'strict' (the default), so the host would be refused. Check "
            f"the address first ({_address_origin(i, host, options, address, port)}): a wrong "
            "host or port ends here too, and ssh-keyscan of a wrong host or port adds nothing "
            "useful. If they are right, add its key after checking the fingerprint "
            f"({scan} | ssh-keygen -lf - shows it; compare with the host's own): "
            f"{scan} >> {files[0]}; or set host_key_policy: accept-new to trust the host on "
            "first use"
        )
    return errors


def _address_origin(
    i: int, host: dict[str, Any], options: dict[str, Any], address: str, port: int
) -> str:
    """Where the host name and port that host_key_errors looked up come from, in words.

    A typo in either is the likeliest reason for "no key", so the message points at the keys
    to check (the merged entry no longer says whether a port was under the host or ssh:).
    """
    given = host.get("hostname") or host["name"]
    if address != given:  # paramiko's lookup always has a hostname: the given one by default
        host_from = f"HostName in ~/.ssh/config for {given}"
    else:
        host_from = f"hosts[{i}].hostname" if "hostname" in host else f"hosts[{i}].name"
    if "port" in host:
        port_from = f"hosts[{i}].port or ssh.port"
    elif "port" in options:
        port_from = "Port in ~/.ssh/config"
    else:
        port_from = f"the default; set hosts[{i}].port if the host listens elsewhere"
    return f"host {address} from {host_from}, port {port} from {port_from}"


def inventory_hosts(
    inventory_file: str | Path, root: str | Path | None = None, argv: list[str] | None = None
) -> list:
    """pyinfra hosts for the client described in the YAML file beside `inventory_file`.

    Use it as the whole body of `inventories/<client>.py`:
        hosts = inventory_hosts(__file__)
    `root` overrides every host's deploy root (the local demo deploys into the repo).
    """
    yml = Path(inventory_file).with_suffix(".yml")
    adapter.skip_final_collection()
    cli_run_rules()  # FAIL_PERCENT = 0 even without config.py (another working directory)
    try:
        return _inventory_hosts(yml, root, adapter.command_line() if argv is None else argv)
    except (ConfigError, ReleaseError, UploadError) as e:
        # Stop here, before pyinfra connects to anything, with only our message.
        print(f"atomic-deploy: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def check_local_tools(argv: list[str]) -> None:
    """Raise ConfigError when a run that uploads lacks rsync or git on this machine.

    rsync (the upload) and git (the release name) run where pyinfra runs; without them the run
    would stop in the middle (at the upload) or with a traceback, instead of before connecting.
    """
    if not uploads_source(argv):
        return
    missing = [tool for tool in ("rsync", "git") if shutil.which(tool) is None]
    if not missing:
        return
    roles = {"rsync": "uploads the release", "git": "names the release"}
    if len(missing) == 1:
        what, why, it = f"{missing[0]} is", f"it {roles[missing[0]]}", "it"
    else:
        what, it = "rsync and git are", "them"
        why = ", ".join(f"{tool} {roles[tool]}" for tool in missing)
    raise ConfigError(
        f"{what} not installed on this machine ({why}): install {it}, "
        f"e.g. apt-get install {' '.join(missing)}"
    )


def _inventory_hosts(yml: Path, root: str | Path | None, argv: list[str]) -> list:
    client = load_client(yml)
    check_local_tools(argv)
    if "--dry" in argv:  # what this client runs with instead of its preset's values
        for line in client.preset_differs:
            print(f"atomic-deploy: {line}", file=sys.stderr)
    if root is not None:
        for host in client.hosts:
            host["root"] = str(root)
    cli = cli_data(argv)
    allow_dirty = client.allow_dirty
    if "allow_dirty" in cli:
        value = adapter.cli_value(cli["allow_dirty"])
        if not isinstance(value, bool):
            raise ConfigError(f"--data allow_dirty={cli['allow_dirty']}: expected true or false")
        allow_dirty = value
    explicit = adapter.cli_value(cli["release"]) if "release" in cli else None
    upload = None
    try:
        if not uploads_source(argv):  # rollback/status/restore: the release is on the hosts
            release = None if explicit is None else check_release_value(explicit, "--data release")
        else:
            commit = resolve_release(client.source, allow_dirty=allow_dirty, explicit=explicit)
            if commit.dirty and commit.git and client.build_commands:
                raise ReleaseError(
                    f"source {client.source} has uncommitted changes, and build.commands run in "
                    "a clean export of the commit, so they would not be deployed: commit them"
                )
    except ReleaseError as e:
        raise ReleaseError(f"{yml}: {e}") from None
    problems = host_key_errors(client)
    if problems:
        raise ConfigError(f"{client.file}:\n  " + "\n  ".join(problems))
    passwords = read_passwords(client)
    if uploads_source(argv):  # last: the build is the slow part, and needs a valid client
        upload = prepare_upload(client, commit)
        release = upload.name
    for name, password in passwords.items():
        remember_password(name, password)
    hosts = [(h["name"], host_data(client, h, release, upload)) for h in client.hosts]
    if upload is not None:  # every check passed: the upload's connections may open now
        open_masters(hosts, argv)
    return hosts


def prepare_upload(client: Client, commit: Any) -> UploadSet:
    """Stage the upload set (running the build, if any) and say what was left out."""
    spec = Spec(
        source=client.source,
        docroot=client.docroot,
        shared=client.shared_dirs + client.shared_files,
        exclude=client.exclude,
        build_commands=client.build_commands,
        build_output=client.build_output,
    )
    upload = prepare(spec, commit, client.file)
    for path in upload.not_uploaded:
        print(
            f"atomic-deploy: {path} is a shared path: not uploaded (shared paths live on the "
            "hosts, in shared/)",
            file=sys.stderr,
        )
    return upload


def database_reference_table() -> str:
    """docs/configuration.md's table of the database section's keys, generated from the schema."""
    spec = _schema()["$defs"]["database"]["properties"]
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for key, raw in spec.items():
        if key == "name":
            default = "(required)"
        elif "default" in raw:
            default = f"`{raw['default']}`"
        else:
            default = ""
        rows.append(f"| `{key}` | {default} | {raw.get('description', '')} |")
    return "\n".join(rows)


def reference_table() -> str:
    """docs/configuration.md's configuration table, generated from the schema (one row per key)."""
    schema = _schema()
    defs = schema["$defs"]

    def resolve(spec: dict[str, Any]) -> dict[str, Any]:
        ref = spec.get("$ref", "")
        return {**defs[ref.rsplit("/", 1)[-1]], **spec} if ref.startswith("#/$defs/") else spec

    def kind(spec: dict[str, Any]) -> str:
        spec = resolve(spec)
        if spec.get("type") == "array":
            return f"list of {kind(spec['items'])}"
        return spec.get(
            "type", "string" if "enum" not in spec else "one of " + ", ".join(spec["enum"])
        )

    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key, raw in schema["properties"].items():
        spec = resolve(raw)
        if key in schema.get("required", []):
            default = "(required)"
        elif "default" in spec:
            value = spec["default"]
            default = f"`{value if isinstance(value, str) else json.dumps(value)}`"
        elif key == "root":
            default = "the SSH user's home"
        else:
            default = ""
        meaning = spec.get("description", "")
        if key in ("ssh", "hosts", "database", "php", "hooks", "health", "notify"):
            obj = resolve(spec.get("items", spec))
            keys = ", ".join(f"`{k}`" for k in obj["properties"])
            meaning = (meaning + " " if meaning else "SSH settings for every host: ") + (
                f"Each: {keys}." if key == "hosts" else f"{keys}."
            )
        rows.append(f"| `{key}` | {kind(raw)} | {default} | {meaning} |")
    return "\n".join(rows)
