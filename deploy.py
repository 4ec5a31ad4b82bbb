"""Deploy one release of a client's site: the deploy's phases, with its wanted states.

pyinfra inventories/client1.py deploy.py          # shows what would change, asks, applies
pyinfra inventories/client1.py deploy.py --dry    # only shows (with the commits since the live
                                                  # release; --data show_paths=true lists files)

Every state reads the host and changes only what differs, so a rerun is also a repair.
Phases, as Capistrano names them: prepare the host, publish the release on every host,
switch to it (on every host or on none), finish.
"""

from pyinfra import host

from operations.run import HostRun
from operations.states import (
    dump,
    env_guard,
    health,
    hooks,
    maintenance,
    pending,
    php_reload,
    preflight,
    prune,
    release,
    shared,
    shared_sources,
    switch,
    tree,
    writable,
)

run = HostRun.for_host()
deploy = run.deploy
sha = deploy.release
docroot = deploy.layout.docroot

# prepare: the host can take the release (checked before anything changes, the lock included)
preflight.host_ready(name="host ready for the deploy", deploy=deploy)
pending.changes_named(  # the commits and files since the live release (dry run, webhook)
    name="changes since the live release named",
    layout=deploy.layout,
    release=sha,
    source=deploy.checkout,
    show_paths=host.data.get("show_paths") is True,
)

with run.guarded("deploy"):  # the deploy lock on every host, on_failure hooks, the webhook
    tree.tree_present(name="tree present", deploy=deploy)
    if deploy.shared_sources:  # a new host is set up from the client file alone
        shared_sources.shared_files_uploaded(name="shared files uploaded", deploy=deploy)
    if deploy.layout.shared_files:  # a host without its .env stops the deploy, none switches
        run.before_switch(
            shared_sources.shared_files_present(name="shared files present", deploy=deploy)
        )

    # publish: every host has the release, its shared paths, a fresh dump, its migrations
    run.before_switch(
        release.release_populated(name=f"release {sha} populated", deploy=deploy),
        arms_on_failure=True,  # from here on, a failure runs the on_failure hooks
    )
    shared.shared_linked(name="shared dirs and files linked", deploy=deploy)
    if deploy.layout.writable_dirs:  # the site's own folders in each release
        writable.writable_present(name="writable dirs present", deploy=deploy)
    if env_guard.ENV_FILE in deploy.layout.shared_files:  # a new key missing: none switches
        run.before_switch(
            env_guard.env_keys_defined(name="shared .env defines the release's keys", deploy=deploy)
        )
    if run.database:  # a failed dump stops the deploy before any switch
        run.before_switch(
            dump.fresh_dump_present(
                name=f"fresh dump of {run.database.name}",
                deploy=deploy,
                database=run.database,
            )
        )
    if run.hooks.maintenance and run.hooks.before_switch:  # the web server answers 503
        run.before_switch(
            maintenance.maintenance_started(name="maintenance flag up", deploy=deploy)
        )
    if run.hooks.before_switch:  # e.g. migrations; a failure stops the deploy, none switches
        run.before_switch(
            hooks.hooks_run(
                name="before_switch hooks",
                deploy=deploy,
                hooks=run.hooks,
                point="before_switch",
            )
        )

    # switch: only once every host published (all hosts or none)
    switched = switch.current_switched(
        name=f"current -> releases/{sha}", deploy=deploy, held_back=run.held_back
    )
    switch.docroot_linked(name=f"{docroot} -> current/{docroot}", deploy=deploy)
    if run.hooks.maintenance:  # raised by the before_switch hooks: the site is served again
        maintenance.maintenance_ended(name="maintenance flag removed", deploy=deploy)
    if run.php:  # after the docroot link: its one-time file is requested through it
        php_reload.php_refreshed(name=f"PHP refreshed ({run.php.mode})", deploy=deploy, php=run.php)
    if run.hooks.after_switch:
        hooks.hooks_run(
            name="after_switch hooks",
            deploy=deploy,
            hooks=run.hooks,
            point="after_switch",
            _if=switched.did_change,
        )
    if run.health:  # any host unhealthy: every host that switched goes back
        health.health_checked(
            name="health checked", deploy=deploy, health=run.health, _if=switched.did_change
        )
        health.healthy_or_rolled_back(
            name="all hosts healthy, or rolled back",
            deploy=deploy,
            health=run.health,
            php=run.php,
            _if=switched.did_change,
        )

    # finish
    prune.releases_pruned(name=f"at most {deploy.keep_releases} releases kept", deploy=deploy)
