"""What a host's deploy root says about the live site: release, history, dumps, lock, drift.

`report` and `drift` are pure (tested without a host); `status_shown` is the only operation
of status.py: it reads the host (one or two round trips, plus one for dumps) and prints the
report to stdout, once per host, as text or as one JSON object per line. It never changes
anything.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from dataclasses import replace
from typing import Any

from pyinfra import host

from .. import deploy_log
from ..common import wanted_state
from ..context import run_context
from ..database import Database, DumpFolder, format_age
from ..facts import DeployState, deploy_state
from ..layout import (
    CURRENT_LINK,
    RELEASES_DIR,
    SHARED_DIR,
    TMP_PREFIX,
    Deploy,
    Layout,
)
from ..live import NO_RELEASE
from ..manifest import parse_differences
from ..plan import current_release, plan_prune, previous_release
from ..release_name import RELEASE_RE
from .dump import dump_folder
from .lock import describe
from .shared import link_target


def history(state: DeployState, lines: int) -> list[dict[str, str]]:
    """The last `lines` entries of the deploy log, oldest first."""
    out = [
        {"time": e.when, "event": e.event, "release": e.release, "by": e.by, "detail": e.detail}
        for e in deploy_log.parse(state.log)
    ]
    return out[-lines:] if lines > 0 else []


def last_live(state: DeployState) -> str | None:
    """The release the deploy log last made live (switch or rollback), if any."""
    made_live = [e.release for e in deploy_log.parse(state.log) if e.event in deploy_log.MADE_LIVE]
    return made_live[-1] if made_live else None


def drift(
    state: DeployState,
    layout: Layout,
    keep_releases: int | None = None,
    shared_mode: str | None = None,
    shared_group: str | None = None,
) -> list[str]:
    """What the next deploy of the live release would put back (docs/design.md, "What a rerun
    fixes"), from `state` read for the live release (or, `current` missing or broken, for the
    release the deploy log last made live).

    `keep_releases`, `shared_mode`, `shared_group`: the client's settings (None: not checked).
    """
    found = []
    live = current_release(state)
    logged = last_live(state)
    have = state.link_target("current")
    if have is None:
        what = "missing" if state.current == "missing" else f"a {state.current}, not a link"
        found.append(f"{CURRENT_LINK} is {what}" + (f" (last live: {logged})" if logged else ""))
    elif live is None or not state.complete(live):
        found.append(f"{CURRENT_LINK} -> {have}, which is not a complete release")
    elif logged and live != logged:
        found.append(
            f"{CURRENT_LINK} -> {have}, but the deploy log last made {RELEASES_DIR}/{logged} live"
        )
    docroot_target = f"{CURRENT_LINK}/{layout.docroot}"
    if state.link_target("docroot") != docroot_target:
        found.append(f"{layout.docroot} is {state.docroot} (should be a link -> {docroot_target})")
    release = live if live and state.complete(live) else logged
    if release and state.complete(release):
        if state.manifest == "changed":
            edits = ", ".join(parse_differences(state.differences)[:10])
            found.append(f"{RELEASES_DIR}/{release} was changed on the server ({edits})")
        elif state.manifest == "missing":
            found.append(f"{RELEASES_DIR}/{release} has no manifest")
        for i, (_kind, path) in enumerate(layout.shared_paths):
            want = f"link {link_target(path)}"
            if state.release_kind(i) != want:
                found.append(
                    f"{RELEASES_DIR}/{release}/{path} is {state.release_kind(i)} "
                    f"(should be a link -> {SHARED_DIR}/{path})"
                )
        for i, path in enumerate(layout.writable_dirs):
            if state.writable_kind(i) != "dir":
                found.append(f"writable dir {RELEASES_DIR}/{release}/{path} is "
                             f"{state.writable_kind(i)} (should be a folder)")  # fmt: skip
    for i, (kind, path) in enumerate(layout.shared_paths):
        if state.shared_kind(i) == "missing":
            what = "shared dir" if kind == "d" else "shared file"
            found.append(f"{what} {SHARED_DIR}/{path} is missing")
        elif kind == "d" and i in state.shared_meta:
            mode, group = state.shared_meta[i]
            if shared_mode and mode.lstrip("0") != shared_mode.lstrip("0"):  # as tree.py does
                found.append(f"{SHARED_DIR}/{path} has mode {mode} (shared_mode {shared_mode})")
            if shared_group and group != shared_group:
                found.append(f"{SHARED_DIR}/{path} has group {group} (shared_group {shared_group})")
    found += [f"leftover temporary link {name}" for name in state.temp_links]
    found += [
        f"leftover of an interrupted run: {RELEASES_DIR}/{name}"
        for name in sorted(state.entries)
        if name.startswith(TMP_PREFIX)
    ]
    if keep_releases is not None and keep_releases >= 1:
        doomed = [n for n in plan_prune(state, keep_releases).delete if not n.startswith(".")]
        if doomed:
            found.append(
                f"more releases than keep_releases ({keep_releases}): the next deploy prunes "
                + ", ".join(doomed)
            )
    return found


def dump_drift(dumps: DumpFolder | None) -> list[str]:
    """The dump rows of "What a rerun fixes": leftovers of interrupted dumps (removed), a
    partial or corrupt newest dump (not counted as fresh: the next deploy dumps again)."""
    if dumps is None:
        return []
    found = [f"leftover of an interrupted dump: {name}" for name in dumps.leftovers]
    newest = max(dumps.dumps, key=lambda d: d.mtime, default=None)
    if newest is not None and not newest.intact:
        found.append(f"the newest dump {newest.name} is partial or corrupt (not counted as fresh)")
    return found


def live_order(state: DeployState) -> list[str]:
    """Complete releases by when they were live (the deploy log), the live one first; then
    releases never live, most recently populated first."""
    live = current_release(state)
    made_live: dict[str, int] = {}
    used: dict[str, int] = {}
    for i, e in enumerate(deploy_log.parse(state.log)):
        if e.event in deploy_log.MADE_LIVE:
            made_live[e.release] = i
        if e.event in (deploy_log.POPULATED, *deploy_log.MADE_LIVE):
            used[e.release] = i
    names = [n for n in state.entries if RELEASE_RE.match(n) and state.complete(n)]
    return sorted(
        names,
        key=lambda n: (n == live, made_live.get(n, -1), used.get(n, -1), n),
        reverse=True,
    )


def previous_live(state: DeployState) -> str | None:
    """The rollback target: the one rollback.py picks, or, `current` missing, the one it
    would pick once `current` is back on the release the log last made live."""
    logged = last_live(state)
    if current_release(state) is None and logged:
        state = replace(state, current=f"link {RELEASES_DIR}/{logged}")
    return previous_release(state)


def report(
    host_name: str,
    state: DeployState,
    layout: Layout,
    dumps: DumpFolder | None = None,
    lines: int = 10,
    deploy: Deploy | None = None,
) -> dict[str, Any]:
    """Everything status.py shows for one host, as a JSON-ready dict (`deploy`: the client's
    settings, for the drift of keep_releases and shared modes)."""
    live = current_release(state)
    previous = previous_live(state)
    events = history(state, len(state.log))
    when_live = {e["release"]: e["time"] for e in events if e["event"] in deploy_log.MADE_LIVE}
    became_live = next(
        (
            e
            for e in reversed(events)
            if e["release"] == live and e["event"] in deploy_log.MADE_LIVE
        ),
        None,
    )
    releases = [
        {
            "release": name,
            "live": name == live,
            "previous": name == previous,
            "last_live": when_live.get(name),
        }
        for name in live_order(state)
    ]
    newest = None
    if dumps is not None:
        intact = sorted((d for d in dumps.dumps if d.intact), key=lambda d: d.mtime)
        if intact:
            age = max(0, dumps.now - intact[-1].mtime)
            newest = {"file": intact[-1].name, "age_seconds": age, "age": format_age(age)}
    return {
        "host": host_name,
        "root": state.root,
        "live": live,
        "live_since": became_live["time"] if became_live else None,
        "live_by": became_live["by"] if became_live else None,
        "live_how": became_live["event"] if became_live else None,
        "previous": previous,
        "releases": releases,
        "database": dumps is not None,
        "newest_dump": newest,
        "writable_dirs": list(layout.writable_dirs),
        "lock": describe(state.lock) if state.lock is not None else None,
        "last_live": last_live(state),
        "drift": drift(
            state,
            layout,
            keep_releases=deploy.keep_releases if deploy else None,
            shared_mode=deploy.shared_mode if deploy else None,
            shared_group=deploy.shared_group if deploy else None,
        )
        + dump_drift(dumps),
        "history": events[-lines:] if lines > 0 else [],
    }


def format_text(data: dict[str, Any]) -> str:
    """The report as the lines a person reads."""
    out = [f"{data['host']}: {data['root']}"]
    if data["live"]:
        since = (
            f" ({data['live_how']} {data['live_since']} by {data['live_by']})"
            if data["live_since"]
            else ""
        )
        out.append(f"  live: {RELEASES_DIR}/{data['live']}{since}")
    else:
        last = f" (last live: {RELEASES_DIR}/{data['last_live']})" if data["last_live"] else ""
        out.append(f"  live: none{last}")
    marks = [
        r["release"] + (" (live)" if r["live"] else " (previous)" if r["previous"] else "")
        for r in data["releases"]
    ]
    out.append(f"  releases, last live first: {', '.join(marks) or 'none'}")
    if data["database"]:
        dump = data["newest_dump"]
        out.append(
            f"  newest dump: {dump['file']} ({dump['age']} old)" if dump else "  newest dump: none"
        )
    if data.get("writable_dirs"):  # each release's own, not shared (states/writable.py)
        out.append(f"  writable dirs: {', '.join(data['writable_dirs'])}")
    out.append(f"  lock: held by {data['lock']}" if data["lock"] else "  lock: free")
    if data["drift"]:
        out.append("  drift:")
        out += [f"    - {item}" for item in data["drift"]]
    else:
        out.append("  drift: none")
    out.append(f"  history (last {len(data['history'])}):")
    out += [
        "    " + "  ".join(e[k] for k in ("time", "event", "release", "by", "detail")).rstrip()
        for e in data["history"]
    ]
    return "\n".join(out)


@wanted_state
def status_shown(deploy: Deploy, database: Database | None, as_json: bool, lines: int) -> Generator:
    """
    Ensure the host's status was printed on stdout (changes nothing, never a change).

    + deploy: the host's Deploy settings (layout)
    + database: the host's Database, for the newest dump (None: no database)
    + as_json: one JSON object per host instead of text
    + lines: how many deploy log entries to show

    **Example:**

    .. code:: python

        status.status_shown(name="status", deploy=deploy, database=None, as_json=False, lines=10)
    """
    printed = run_context(host.state).printed  # op bodies may run twice: print once
    if host.name in printed:
        return
    printed.add(host.name)
    state = deploy_state(deploy.layout, NO_RELEASE)
    live = current_release(state) or last_live(state)  # current missing: the last live one
    if live:
        state = deploy_state(deploy.layout, live)
    dumps = None
    if database is not None:
        dumps = dump_folder(deploy, database)
    data = report(host.name, state, deploy.layout, dumps, lines, deploy)
    print(json.dumps(data, sort_keys=True) if as_json else format_text(data), flush=True)
    return
    yield
