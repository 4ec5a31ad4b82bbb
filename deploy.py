"""Deploy one release of a client's site: the wanted states, in order.

pyinfra inventories/client1.py deploy.py          # shows what would change, asks, applies
pyinfra inventories/client1.py deploy.py --dry    # only shows
"""

from pyinfra import host, state

from operations import barrier, preflight, prune, release, shared, switch, tree
from operations.layout import Deploy

deploy = Deploy.from_host_data(host.data)
sha = deploy.release

preflight.host_ready(name="host ready for the deploy", deploy=deploy)
tree.tree_present(name="tree present", deploy=deploy)
barrier.record_populated(
    host.name, release.release_populated(name=f"release {sha} populated", deploy=deploy)
)
shared.shared_linked(name="shared dirs and files linked", deploy=deploy)
switch.current_switched(
    name=f"current -> releases/{sha}",
    deploy=deploy,
    _if=barrier.all_hosts_populated(state),  # all hosts populated, or none switches
)
switch.docroot_linked(
    name=f"{deploy.layout.docroot} -> current/{deploy.layout.docroot}", deploy=deploy
)
prune.releases_pruned(name=f"at most {deploy.keep_releases} releases kept", deploy=deploy)
