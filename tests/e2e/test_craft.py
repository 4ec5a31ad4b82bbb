"""A Craft-shaped site deployed with `preset: craft` over three real sshd's, and the walk-through
in docs/craft.md followed end to end.

The site's `craft` is a stub run by the real PHP CLI (`$ATOMIC_PHP craft ...`, as the preset's
hooks say): it appends one line per call to `<deploy root>/craft.log` (time, host, release,
arguments, the PHP binary, whether shared/.maintenance exists, what `current` points at) and
writes where Craft writes (web/cpresources/<hash>/, storage/runtime/).
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from support.client import (
    CLIENT_PY,
    host_entry,
    run_pyinfra,
    run_pyinfra_json,
    ssh_block,
    write_client,
)
from support.proc import REPO_ROOT
from support.site import SiteRepo
from support.snapshot import tree_snapshot
from support.sshd import SshHost

pytestmark = pytest.mark.e2e

CRAFT_STUB = r"""<?php
// Stub of Craft's CLI for the tests: records each call, writes where Craft writes.
$root = getenv('ATOMIC_DEPLOY_ROOT');
$args = implode(' ', array_slice($argv, 1));
$flag = file_exists("$root/shared/.maintenance") ? 'maintenance' : 'open';
$line = sprintf("%.6f\t%s\t%s\t%s\t%s\t%s\t%s\n", microtime(true), getenv('ATOMIC_HOST'),
    basename(getcwd()), $args, PHP_BINARY, $flag, (string) @readlink("$root/current"));
file_put_contents("$root/craft.log", $line, FILE_APPEND | LOCK_EX);
@mkdir('web/cpresources/3f2a9c1b', 0775, true);
file_put_contents('web/cpresources/3f2a9c1b/cp.js', "/* published by craft */\n");
@mkdir('storage/runtime', 0775, true);
file_put_contents('storage/runtime/last-call', "$args\n");
if ($argv[1] === 'up' && file_exists('FAIL_MIGRATION')) {
    fwrite(STDERR, "migration m260101_000000_broken failed\n");
    exit(1);
}
"""

CRAFT_SITE = {
    "craft": CRAFT_STUB,
    "web/index.php": "<?php\necho 'craft release ' . trim(file_get_contents(__DIR__ . '/../VERSION')) . \"\\n\";\n",  # noqa: E501
    "web/cpresources/.gitignore": "*\n!.gitignore\n",
    "config/general.php": "<?php\nreturn ['*' => ['allowAdminChanges' => false]];\n",
    "config/project/project.yaml": "system:\n  name: Acme\n",
    "templates/index.twig": "<h1>{{ siteName }}</h1>\n",
    "composer.json": '{"require": {"craftcms/cms": "^5.0"}}\n',
    ".env.example": "CRAFT_ENVIRONMENT=\nCRAFT_SECURITY_KEY=\n",
    ".gitignore": "/.env\n/vendor/\n",
    "VERSION": "1\n",
}
ENV = "CRAFT_ENVIRONMENT=production\nCRAFT_SECURITY_KEY=s3cret-key\n"


def make_craft_site(path: Path) -> SiteRepo:
    """The Craft-shaped site, with a git-ignored .env and vendor/ in its work tree."""
    site = SiteRepo.create(path, CRAFT_SITE)
    (path / ".env").write_text("CRAFT_ENVIRONMENT=dev\n")  # a developer's: never uploaded
    (path / "vendor" / "craftcms").mkdir(parents=True)
    (path / "vendor" / "autoload.php").write_text("<?php // composer\n")
    return site


@dataclass
class Call:
    when: float
    host: str
    release: str
    args: str
    php: str
    flag: str
    current: str


def calls(roots: dict[str, Path]) -> list[Call]:
    """Every stub call on every host, in time order."""
    out = []
    for root in roots.values():
        log = root / "craft.log"
        for line in log.read_text().splitlines() if log.exists() else []:
            when, *rest = line.split("\t")
            out.append(Call(float(when), *rest))
    return sorted(out, key=lambda c: c.when)


def switch_times(root: Path, release: str) -> list[float]:
    """Deploy-log times (whole seconds) of the switches to `release`."""
    out = []
    for line in (root / ".atomic-deploy" / "log").read_text().splitlines():
        when, event, rel, *_ = line.split("\t")
        if event == "switch" and rel == release:
            stamp = datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            out.append(stamp.timestamp())
    return out


@dataclass
class Craft:
    inventory: Path
    roots: dict[str, Path]
    site: SiteRepo
    env_file: Path

    def deploy(self, *args: str, check: bool = True, deploy_file: str = "deploy.py"):
        return run_pyinfra(self.inventory, "-y", *args, check=check, deploy_file=deploy_file)


@pytest.fixture
def craft(ssh_hosts: list[SshHost], deploy_root, tmp_path: Path):
    def make(**options) -> Craft:
        site = make_craft_site(tmp_path / "acme-site")
        roots = {h.name: deploy_root(h.name) for h in ssh_hosts}
        hosts = [host_entry(h, roots[h.name]) for h in ssh_hosts]
        hosts[1]["php_binary"] = "/usr/bin/php8.2"  # a host with its own PHP
        env_file = tmp_path / "acme.env"
        env_file.write_text(ENV)
        inventory = write_client(
            tmp_path / "inv", source=site.path, hosts=hosts, ssh=ssh_hosts[0],
            preset="craft", build={"output": ["vendor"]},
            shared_sources={".env": str(env_file)}, **options,
        )  # fmt: skip
        return Craft(inventory, roots, site, env_file)

    return make


def test_craft_preset_deploys_migrates_once_before_any_switch_and_clears_caches(craft):
    c = craft()
    c.deploy()
    release = re.search(r"releases/(\S+)", os.readlink(c.roots["web1"] / "current")).group(1)
    assert release.startswith(c.site.sha_short())  # vendor/ was uploaded: digest added
    for name, root in c.roots.items():
        assert os.readlink(root / "current") == f"releases/{release}", name
        assert os.readlink(root / "web") == "current/web"
        rel = root / "releases" / release
        assert os.readlink(rel / "storage") == "../../shared/storage"
        assert os.readlink(rel / ".env") == "../../shared/.env"
        assert (root / "shared" / ".env").read_text() == ENV
        assert (rel / "vendor" / "autoload.php").is_file()
        assert (rel / "web" / "cpresources").is_dir()
    done = calls(c.roots)
    ups = [x for x in done if x.args == "up --interactive=0"]
    assert len(ups) == 1, done  # once per deploy, not once per host
    up = ups[0]
    assert up.release == release and up.current == ""  # before this host switched
    for root in c.roots.values():
        # before any host switched: the switch lines (whole seconds) and the link's own time
        assert all(up.when < t + 1 for t in switch_times(root, release))
        assert up.when < os.lstat(root / "current").st_mtime
    clears = [x for x in done if x.args.startswith("clear-caches/")]
    assert sorted((x.host, x.args) for x in clears) == sorted(
        (h, f"clear-caches/{what}")
        for h in c.roots
        for what in ("data", "compiled-classes", "compiled-templates")
    )
    assert all(x.current == f"releases/{release}" for x in clears)  # after the switch
    assert {x.host: x.php for x in clears}["web2"] == "/usr/bin/php8.2"
    assert {x.host: x.php for x in clears}["web1"] == "/usr/bin/php8.2"  # `php` on this machine
    assert all(x.flag == "open" for x in done)  # maintenance is opt-in


def test_craft_writes_are_not_drift_and_a_rerun_changes_nothing(craft):
    c = craft()
    c.deploy()
    release = os.readlink(c.roots["web1"] / "current")
    for root in c.roots.values():  # Craft publishes control-panel resources at run time
        published = root / release / "web" / "cpresources" / "3f2a9c1b" / "cp.js"
        assert published.is_file()
        assert (root / "shared" / "storage" / "runtime" / "last-call").is_file()
    before = {n: tree_snapshot(r) for n, r in c.roots.items()}
    count = len(calls(c.roots))
    _, results = run_pyinfra_json(c.inventory, "-y", check=True)
    assert results["results"]["totals"]["success"] == 0
    assert len(calls(c.roots)) == count  # no hook ran again
    after = {n: tree_snapshot(r) for n, r in c.roots.items()}
    for name in c.roots:
        changed = {k for k in before[name].keys() | after[name].keys()
                   if before[name].get(k) != after[name].get(k)}  # fmt: skip
        assert {k for k in changed if not k.startswith(".atomic-deploy")} == set(), name


def test_rollback_clears_caches_on_every_host(craft):
    c = craft()
    c.deploy()
    first = os.readlink(c.roots["web1"] / "current")
    c.site.commit({"VERSION": "2\n"})
    c.deploy()
    assert os.readlink(c.roots["web1"] / "current") != first
    count = len(calls(c.roots))
    c.deploy(deploy_file="rollback.py")
    after = calls(c.roots)[count:]
    assert sorted((x.host, x.args) for x in after) == sorted(
        (h, f"clear-caches/{what}")
        for h in c.roots
        for what in ("data", "compiled-classes", "compiled-templates")
    )
    for x in after:
        assert x.current == first and x.release == first.split("/")[1]


def test_a_key_missing_from_the_shared_env_stops_the_deploy_before_any_switch(craft):
    c = craft()
    c.deploy()
    live = os.readlink(c.roots["web1"] / "current")
    c.site.commit({".env.example": "CRAFT_ENVIRONMENT=\nCRAFT_SECURITY_KEY=\nCRAFT_DB_SERVER=\n"})
    count = len(calls(c.roots))
    proc = c.deploy(check=False)
    assert proc.returncode != 0
    assert "CRAFT_DB_SERVER" in proc.stderr + proc.stdout
    for root in c.roots.values():
        assert os.readlink(root / "current") == live
    assert calls(c.roots)[count:] == []  # craft up did not run either


def test_maintenance_flag_is_up_while_craft_up_runs_and_gone_after(craft, web_stack):
    c = craft(maintenance=True)
    proc = c.deploy()
    for name in c.roots:  # the dry run and the output say so, per host
        assert f"[{name}] shared/.maintenance: up while the before_switch hooks" in proc.stderr
    ups = [x for x in calls(c.roots) if x.args.startswith("up")]
    assert ups and all(x.flag == "maintenance" for x in ups)
    for x in calls(c.roots):
        if x.args.startswith("clear-caches"):
            assert x.flag == "open"  # removed right after the switch
    for root in c.roots.values():
        assert not (root / "shared" / ".maintenance").exists()

    # a failed migration: nothing switches, and the flag is not left behind
    live = os.readlink(c.roots["web1"] / "current")
    c.site.commit({"FAIL_MIGRATION": "1\n", "VERSION": "2\n"})
    count = len(calls(c.roots))
    proc = c.deploy(check=False)
    assert proc.returncode != 0
    assert "migration m260101_000000_broken failed" in proc.stderr + proc.stdout
    failed = [x for x in calls(c.roots)[count:] if x.args.startswith("up")]
    assert failed and all(x.flag == "maintenance" for x in failed)
    for root in c.roots.values():
        assert os.readlink(root / "current") == live
        assert not (root / "shared" / ".maintenance").exists()


def _doc_snippet() -> str:
    text = (REPO_ROOT / "docs" / "web-server.md").read_text()
    section = text.split("\n## Maintenance during migrations\n", 1)[1]
    return re.search(r"```nginx\n(.*?)```", section, re.S).group(1)


def test_the_nginx_maintenance_snippet_answers_503_through_the_web_link(craft, web_stack):
    c = craft()
    c.deploy()
    root = c.roots["web1"]
    snippet = _doc_snippet().replace("/var/www/acme", str(root))
    stack = web_stack(root, docroot="web", extra=snippet)
    assert stack.get("/index.php") == (200, "craft release 1\n")
    flag = root / "shared" / ".maintenance"
    flag.touch()
    try:
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=5)
        conn.request("GET", "/index.php")
        resp = conn.getresponse()
        assert resp.status == 503
        assert resp.getheader("Retry-After") == "60"
        assert "maintenance" in resp.read().decode()
        conn.close()
    finally:
        flag.unlink()
    assert stack.get("/index.php") == (200, "craft release 1\n")


# --------------------------------------------------------------------------- docs/craft.md


def _section(text: str, title: str) -> str:
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def _commands(section: str) -> list[list[str]]:
    """The `pyinfra ...` lines of a section's sh blocks, as argv without `pyinfra`."""
    out = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        for line in block.splitlines():
            if line.startswith("pyinfra "):
                out.append(shlex.split(line, comments=True)[1:])
    return out


def test_the_craft_walk_through_works_as_written(ssh_hosts: list[SshHost], deploy_root, tmp_path):
    doc = (REPO_ROOT / "docs" / "craft.md").read_text()
    client_text = re.search(r"```yaml\n(.*?)```", _section(doc, "The client file"), re.S).group(1)
    inventory_py = re.search(r"```python\n(.*?)```", _section(doc, "The client file"), re.S)
    assert inventory_py.group(1) == CLIENT_PY.replace("\nhosts", "\n\nhosts")

    # the folders the page describes: the repository copy beside the site checkout
    projects = tmp_path / "projects"
    site = make_craft_site(projects / "acme-site")
    inventories = projects / "atomic-deploy" / "inventories"
    (inventories / "secrets").mkdir(parents=True)
    (inventories / "secrets" / "acme.env").write_text(ENV)
    client = yaml.safe_load(client_text)
    # substitute hosts, ports and keys only
    roots = {}
    for entry, ssh_host in zip(client["hosts"], ssh_hosts, strict=False):
        roots[entry["name"]] = deploy_root(entry["name"])
        entry.update(hostname=ssh_host.hostname, port=ssh_host.port, root=str(roots[entry["name"]]))
    client["ssh"] = ssh_block(ssh_hosts[0])
    (inventories / "acme.yml").write_text(yaml.safe_dump(client, sort_keys=False))
    (inventories / "acme.py").write_text(inventory_py.group(1))

    def run(argv: list[str]) -> None:
        args = [a for a in argv if a != "inventories/acme.py"]
        deploy_file = next(a for a in args if a.endswith(".py"))
        args.remove(deploy_file)
        run_pyinfra(inventories / "acme.py", *args, deploy_file=deploy_file, check=True)

    first = _commands(_section(doc, "The first deploy"))
    assert first and first[0][-1] == "--dry"
    run(first[0])
    assert not any(root.exists() for root in roots.values())  # the dry run changed nothing
    for argv in first[1:]:
        run(argv)
    v1 = os.readlink(roots["web1"] / "current")
    assert v1.startswith(f"releases/{site.sha_short()}")
    for root in roots.values():
        assert os.readlink(root / "current") == v1
        assert (root / "web" / "index.php").is_file()
        assert (root / "shared" / ".env").read_text() == ENV

    site.commit({"VERSION": "2\n"})
    for argv in _commands(_section(doc, "Daily deploys")):
        run(argv)
    v2 = os.readlink(roots["web1"] / "current")
    assert v2 != v1 and (roots["web1"] / v2 / "VERSION").read_text() == "2\n"

    for argv in _commands(_section(doc, "Rollback")):
        run(argv)
    assert all(os.readlink(root / "current") == v1 for root in roots.values())
    ran = calls(roots)
    assert [x.args for x in ran].count("up --interactive=0") == 2  # once per deploy
    assert all(x.php == "/usr/bin/php8.2" for x in ran)  # php_binary from the client file


def test_the_dry_run_names_each_value_that_differs_from_the_preset(craft):
    c = craft(shared_dirs=["storage", "web/uploads"], docroot="web")
    proc = run_pyinfra(c.inventory, "--dry", check=True)
    line = "atomic-deploy: shared_dirs: [storage, web/uploads] (the client file's; preset craft"
    assert proc.stderr.count(line) == 1
    assert "atomic-deploy: docroot:" not in proc.stderr  # the preset's own value: not named
    assert not any(root.exists() for root in c.roots.values())
