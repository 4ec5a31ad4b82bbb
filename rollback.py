"""Point `current` back at the previous release (or a named one) on every host, or on none.

pyinfra inventories/client1.py rollback.py --dry                      # only shows
pyinfra -y inventories/client1.py rollback.py                         # the previous release
pyinfra -y inventories/client1.py rollback.py --data 'release="<sha>"'  # a named one (forward too)

The previous release comes from each host's deploy log (not a directory listing). If any
targeted host lacks the target, or the hosts' previous releases differ, nothing switches
anywhere and the error names the host. The database is not touched: restoring the dump taken
before a release is a separate step (restore_dump.py).
"""

from pyinfra import host, state

from operations import barrier, lock, notify, php_reload, rollback, switch
from operations.live import deploy_for, webhook_from_host_data

named = host.data.get("release")  # checked by the inventory: a sha, or None
probe = deploy_for(host.data, None)
target = rollback.planned_target(probe.layout, named)  # re-checked under the lock
deploy = deploy_for(host.data, target)
layout = deploy.layout
php = php_reload.PhpRefresh.from_host_data(host.data)
webhook = webhook_from_host_data(host.data)
if webhook:
    notify.arm(webhook, "rollback", target or "", deploy.deployed_by, host.data.get("client_file"))

lock.take_with_first_read(deploy)  # the first host's lock rides on its first read
take_over = host.data.get("take_over_lock") is True  # --data take_over_lock=true
lock.lock_held(name="deploy lock held (first host)", deploy=deploy, hosts="first",
               take_over=take_over)  # fmt: skip
lock.lock_held(name="deploy lock held (other hosts)", deploy=deploy, hosts="others",
               take_over=take_over)  # fmt: skip
barrier.required_before_switch(
    host.name,
    rollback.rollback_target_ready(
        name="rollback target complete on every host", layout=layout, named=named, planned=target
    ),
)
barrier.required_before_switch(
    host.name, rollback.targets_agree(name="same rollback target on every host", named=named)
)
rollback.current_rolled_back(
    name="current rolled back",
    layout=layout,
    target=target,
    by=deploy.deployed_by,
    named=named is not None,
    _if=barrier.all_hosts_ready(state),  # every host has the target, or none switches
)
switch.docroot_linked(name=f"{layout.docroot} -> current/{layout.docroot}", deploy=deploy)
if php:
    php_reload.php_refreshed(name=f"PHP refreshed ({php.mode})", deploy=deploy, php=php)
lock.lock_released(name="deploy lock released", deploy=deploy)
if webhook:
    notify.notified(
        name="webhook told",
        url=webhook,
        action="rollback",
        release=target or "",
        by=deploy.deployed_by,
        client=host.data.get("client_file"),
        _run_once=True,
    )
