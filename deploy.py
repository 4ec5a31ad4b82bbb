"""Deploy one release of a client's site: the wanted states, in order.

pyinfra inventories/client1.py deploy.py          # shows what would change, asks, applies
pyinfra inventories/client1.py deploy.py --dry    # only shows
"""

from pyinfra import host, state

from operations import (
    barrier,
    dump,
    health,
    hooks,
    lock,
    notify,
    php_reload,
    preflight,
    prune,
    release,
    shared,
    shared_sources,
    switch,
    tree,
)
from operations.database import Database
from operations.layout import Deploy
from operations.live import Health, Hooks, webhook_from_host_data

deploy = Deploy.from_host_data(host.data)
database = Database.from_host_data(host.data)  # None: the client describes no database
hook_commands = Hooks.from_host_data(host.data)  # empty: no hooks
health_check = Health.from_host_data(host.data)  # None: no health check
webhook = webhook_from_host_data(host.data)  # None: no notifications
php = php_reload.PhpRefresh.from_host_data(host.data)  # None: no after-switch step
sha = deploy.release

if webhook:
    notify.arm(webhook, "deploy", sha, deploy.deployed_by, host.data.get("client_file"))
lock.take_with_first_read(deploy)  # the first host's lock rides on its first read
preflight.host_ready(name="host ready for the deploy", deploy=deploy)
# Concurrent deploys race for the first host's lock first: exactly one of them goes on.
take_over = host.data.get("take_over_lock") is True  # --data take_over_lock=true
lock.lock_held(name="deploy lock held (first host)", deploy=deploy, hosts="first",
               take_over=take_over)  # fmt: skip
lock.lock_held(name="deploy lock held (other hosts)", deploy=deploy, hosts="others",
               take_over=take_over)  # fmt: skip
tree.tree_present(name="tree present", deploy=deploy)
if deploy.shared_sources:  # before the check below: a new host is set up from the client file
    shared_sources.shared_files_uploaded(name="shared files uploaded", deploy=deploy)
if deploy.layout.shared_files:  # early: a host without its .env stops the deploy, none switches
    barrier.required_before_switch(
        host.name, shared_sources.shared_files_present(name="shared files present", deploy=deploy)
    )
barrier.required_before_switch(
    host.name, release.release_populated(name=f"release {sha} populated", deploy=deploy)
)
shared.shared_linked(name="shared dirs and files linked", deploy=deploy)
if database:  # before the switch: a failed dump stops the deploy (FAIL_PERCENT = 0)
    barrier.required_before_switch(
        host.name,
        dump.fresh_dump_present(
            name=f"fresh dump of {database.name}", deploy=deploy, database=database
        ),
    )
# From here on a failure runs the on_failure hooks (operations/hooks.py).
hooks.on_failure_armed(name="on_failure hooks armed", deploy=deploy, hooks=hook_commands)
if hook_commands.before_switch:  # e.g. migrations; a failure stops the deploy, none switches
    barrier.required_before_switch(
        host.name,
        hooks.hooks_run(
            name="before_switch hooks", deploy=deploy, hooks=hook_commands, point="before_switch"
        ),
    )
switched = switch.current_switched(
    name=f"current -> releases/{sha}",
    deploy=deploy,
    _if=barrier.all_hosts_ready(state),  # all hosts populated (and dumped), or none switches
)
switch.docroot_linked(
    name=f"{deploy.layout.docroot} -> current/{deploy.layout.docroot}", deploy=deploy
)
if php:  # after the docroot link: the one-time file is requested through it
    php_reload.php_refreshed(name=f"PHP refreshed ({php.mode})", deploy=deploy, php=php)
if hook_commands.after_switch:
    hooks.hooks_run(
        name="after_switch hooks", deploy=deploy, hooks=hook_commands, point="after_switch",
        _if=switched.did_change,
    )  # fmt: skip
if health_check:  # any host unhealthy: every host that switched goes back (operations/health.py)
    health.health_checked(
        name="health checked", deploy=deploy, health=health_check, _if=switched.did_change
    )
    health.healthy_or_rolled_back(
        name="all hosts healthy, or rolled back", deploy=deploy, health=health_check, php=php,
        _if=switched.did_change,
    )  # fmt: skip
prune.releases_pruned(name=f"at most {deploy.keep_releases} releases kept", deploy=deploy)
hooks.on_failure_disarmed(name="on_failure hooks disarmed")
lock.lock_released(name="deploy lock released", deploy=deploy)
if webhook:  # once per run, from this machine; failures only warn (operations/notify.py)
    notify.notified(
        name="webhook told", url=webhook, action="deploy", release=sha, by=deploy.deployed_by,
        client=host.data.get("client_file"), _run_once=True,
    )  # fmt: skip
