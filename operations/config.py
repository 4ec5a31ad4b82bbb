"""The client description: one YAML file per client, validated before any host is contacted.

`inventories/<client>.py` is two lines: it calls `inventory_hosts(__file__)`, which reads the
sibling `<client>.yml`, checks it against `schema/client.schema.json` plus the rules a schema
cannot say, names the release, and returns pyinfra's host list with everything deploy.py needs
as host data.
"""

from __future__ import annotations

import difflib
import getpass
import json
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from pyinfra.api.exceptions import PyinfraError

from .release_name import ReleaseError, resolve_release

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schema" / "client.schema.json"
MAX_FILE_BYTES = 256 * 1024  # a client file is a screenful; anything bigger is a mistake
MAX_DEPTH = 16

# Messages for schema keywords whose default wording shows a regex instead of a reason.
_PATTERN_HINTS = {
    "relpath": "must be a path relative to the release: no leading '/', no '..' or '.' parts, "
    "no empty parts, no newline",
    "root": "must be an absolute path other than '/', without a trailing '/' or newline",
    "name": "must be letters, digits, '_', '.', '-' (not starting with '.' or '-')",
    "pattern": "must be a non-empty rsync pattern without newlines",
}


class ConfigError(PyinfraError):
    """The client description is invalid; the message names the file and the key."""


@dataclass(frozen=True)
class Client:
    """A validated client description with defaults filled in."""

    file: Path
    source: Path
    exclude: tuple[str, ...]
    docroot: str
    shared_dirs: tuple[str, ...]
    shared_files: tuple[str, ...]
    keep_releases: int
    allow_dirty: bool
    hosts: list[dict[str, Any]] = field(default_factory=list)


def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


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
        for key in extra:
            close = difflib.get_close_matches(str(key), allowed, n=2, cutoff=0.6)
            hint = " (did you mean " + " or ".join(f"'{c}'" for c in close) + "?)" if close else ""
            parts.append(f"unknown key '{key}'{hint}")
        return f"{where}: {'; '.join(parts)}; allowed keys: {', '.join(allowed)}"
    if error.validator == "pattern":
        ref = next((name for name, d in defs.items() if d == error.schema), None)
        hint = _PATTERN_HINTS.get(ref or "", f"must match {error.validator_value}")
        return f"{where}: {error.instance!r} {hint}"
    if error.validator == "required":
        return f"{where}: missing required key {error.message.split()[0]}"
    return f"{where}: {error.message}"


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def read_document(file: Path) -> dict[str, Any]:
    """Parse the YAML file (anchors and merge keys allowed) into a mapping, bounded in size."""
    try:
        size = file.stat().st_size
    except OSError as e:
        raise ConfigError(f"{file}: cannot read: {e.strerror}") from None
    if size > MAX_FILE_BYTES:
        raise ConfigError(f"{file}: {size} bytes is too large for a client file (limit 256 KiB)")
    try:
        doc = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"{file}: not valid YAML: {e}") from None
    if not isinstance(doc, dict):
        kind = "empty" if doc is None else f"a {type(doc).__name__}"
        raise ConfigError(f"{file}: the document is {kind}; expected a mapping of keys")
    if _depth(doc) > MAX_DEPTH:
        raise ConfigError(f"{file}: nested deeper than {MAX_DEPTH} levels")
    return doc


def _semantic_errors(doc: dict[str, Any]) -> list[str]:
    """Rules the schema cannot express."""
    errors = []
    names = [h["name"] for h in doc["hosts"]]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        errors.append(f"hosts: the name '{dup}' is used more than once")
    docroot = doc.get("docroot", "htdocs")
    shared = [("shared_dirs", p) for p in doc.get("shared_dirs", [])]
    shared += [("shared_files", p) for p in doc.get("shared_files", [])]
    for i, (key, path) in enumerate(shared):
        idx = doc[key].index(path)
        if path == docroot:
            errors.append(
                f"{key}[{idx}]: '{path}' is the docroot; the served folder can't be shared"
            )
        for other_key, other in shared[:i] + shared[i + 1 :]:
            if path == other:
                errors.append(f"{key}[{idx}]: '{path}' is also listed in {other_key}")
            elif path.startswith(other + "/"):
                errors.append(
                    f"{key}[{idx}]: '{path}' is inside the shared path '{other}' ({other_key})"
                )
    return errors


def load_client(file: str | Path) -> Client:
    """Read and validate a client description; raise ConfigError naming file and key."""
    file = Path(file).resolve()
    doc = read_document(file)
    schema = _schema()
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.path)))
    problems = [_describe(e, schema["$defs"]) for e in errors]
    if not problems:
        problems = _semantic_errors(doc)
    if problems:
        raise ConfigError(f"{file}:\n  " + "\n  ".join(problems))

    base = file.parent
    source = (base / Path(doc["source"]).expanduser()).resolve()
    if not source.is_dir():
        raise ConfigError(f"{file}: source: {source} is not a folder")
    ssh = doc.get("ssh", {})
    hosts = []
    for entry in doc["hosts"]:
        host = {**ssh, **entry}
        for key in ("key", "known_hosts"):
            if key in host:
                host[key] = str((base / Path(host[key]).expanduser()).resolve())
        hosts.append(host)
    return Client(
        file=file,
        source=source,
        exclude=tuple(doc.get("exclude", [])),
        docroot=doc.get("docroot", "htdocs"),
        shared_dirs=tuple(doc.get("shared_dirs", ["cache", "content", "storage"])),
        shared_files=tuple(doc.get("shared_files", [])),
        keep_releases=doc.get("keep_releases", 5),
        allow_dirty=doc.get("allow_dirty", False),
        hosts=hosts,
    )


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


def _cli_value(raw: str) -> Any:
    """What pyinfra will make of a raw --data value (it converts numbers, bools and JSON)."""
    from pyinfra_cli.util import parse_cli_arg

    return parse_cli_arg(raw)


def host_data(client: Client, host: dict[str, Any], release: str) -> dict[str, Any]:
    """pyinfra host data for one host: SSH settings plus what deploy.py reads."""
    data: dict[str, Any] = {
        "root": host.get("root"),  # None: the SSH user's home, found on the host
        "source": str(client.source),
        "exclude": list(client.exclude),
        "docroot": client.docroot,
        "shared_dirs": list(client.shared_dirs),
        "shared_files": list(client.shared_files),
        "keep_releases": client.keep_releases,
        "release": release,
        "client_file": str(client.file),
        "deployed_by": f"{getpass.getuser()}@{socket.gethostname()}",
    }
    if host["name"].startswith("@local"):
        return data
    policy = host.get("host_key_policy", "strict")
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


def inventory_hosts(
    inventory_file: str | Path, root: str | Path | None = None, argv: list[str] | None = None
) -> list:
    """pyinfra hosts for the client described in the YAML file beside `inventory_file`.

    Use it as the whole body of `inventories/<client>.py`:
        hosts = inventory_hosts(__file__)
    `root` overrides every host's deploy root (the local demo deploys into the repo).
    """
    yml = Path(inventory_file).with_suffix(".yml")
    try:
        return _inventory_hosts(yml, root, sys.argv if argv is None else argv)
    except (ConfigError, ReleaseError) as e:
        # Stop here, before pyinfra connects to anything, with only our message.
        print(f"atomic-deploy: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def _inventory_hosts(yml: Path, root: str | Path | None, argv: list[str]) -> list:
    client = load_client(yml)
    if root is not None:
        for host in client.hosts:
            host["root"] = str(root)
    cli = cli_data(argv)
    allow_dirty = client.allow_dirty
    if "allow_dirty" in cli:
        value = _cli_value(cli["allow_dirty"])
        if not isinstance(value, bool):
            raise ConfigError(f"--data allow_dirty={cli['allow_dirty']}: expected true or false")
        allow_dirty = value
    explicit = _cli_value(cli["release"]) if "release" in cli else None
    try:
        release = resolve_release(client.source, allow_dirty=allow_dirty, explicit=explicit)
    except ReleaseError as e:
        raise ReleaseError(f"{yml}: {e}") from None
    return [(h["name"], host_data(client, h, release)) for h in client.hosts]


def reference_table() -> str:
    """The README's configuration table, generated from the schema (one row per key)."""
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
        if key in ("ssh", "hosts"):
            obj = resolve(spec.get("items", spec))
            keys = ", ".join(f"`{k}`" for k in obj["properties"])
            meaning = (meaning + " " if meaning else "SSH settings for every host: ") + (
                f"Each: {keys}." if key == "hosts" else f"{keys}."
            )
        rows.append(f"| `{key}` | {kind(raw)} | {default} | {meaning} |")
    return "\n".join(rows)
