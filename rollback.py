"""Point `current` back at the previous release (or a named one) on every host, or on none.

pyinfra inventories/client1.py rollback.py --dry                      # only shows
pyinfra -y inventories/client1.py rollback.py                         # the previous release
pyinfra -y inventories/client1.py rollback.py --data 'release="<sha>"'  # a named one (forward too)

A named release may be a short sha (7+ digits) when it is unique among the host's releases.
The client's `hooks.after_rollback` run on each host whose `current` moved back, after the
`php` step.

The previous release comes from each host's deploy log (not a directory listing). If any
targeted host lacks the target, or the hosts' previous releases differ, nothing switches
anywhere and the error names the host. The database is not touched: restoring the dump taken
before a release is a separate step (restore_dump.py).
"""

from pyinfra import host

from operations.layout import Layout
from operations.run import HostRun
from operations.states import hooks, pending, php_reload, rollback, switch

named = host.data.get("release")  # checked by the inventory: a release name, or None
loading = HostRun.for_host(existing=True).deploy
layout: Layout = loading.layout
target = rollback.planned_target(loading, named)  # re-checked under the lock (-y: taken here)
run = HostRun.for_host(target, existing=True)
deploy = run.deploy

with run.guarded("rollback"):  # the deploy lock on every host, the webhook
    # every host has the target, and they agree on it: or none switches
    run.before_switch(
        rollback.rollback_target_ready(
            name="rollback target complete on every host",
            layout=layout,
            named=named,
            planned=target,
        )
    )
    run.before_switch(
        rollback.targets_agree(name="same rollback target on every host", named=named)
    )

    pending.changes_named(  # the commits this rollback leaves (dry run, webhook)
        name="changes since the live release named",
        layout=layout,
        release=target or deploy.release,
        source=deploy.checkout,
        show_paths=host.data.get("show_paths") is True,
    )

    # switch
    rolled_back = rollback.current_rolled_back(
        name="current rolled back",
        layout=layout,
        target=target,
        by=deploy.deployed_by,
        named=named is not None,
        last=run.nothing_after_rollback,  # then the lock goes back with the switch
        _if=run.all_hosts_ready,
    )
    switch.docroot_linked(name=f"{layout.docroot} -> current/{layout.docroot}", deploy=deploy)
    if run.php:
        php_reload.php_refreshed(name=f"PHP refreshed ({run.php.mode})", deploy=deploy, php=run.php)
    if run.hooks.after_rollback:  # e.g. clear caches, restart a queue worker
        hooks.hooks_run(
            name="after_rollback hooks",
            deploy=deploy,
            hooks=run.hooks,
            point="after_rollback",
            _if=rolled_back.did_change,
        )
