"""Load the database dump taken before a release: the explicit step after a rollback.

pyinfra inventories/client1.py restore_dump.py --limit web1 --dry
    # says which dump would be loaded into which database, changes nothing
pyinfra inventories/client1.py restore_dump.py --limit web1 [--data 'release="<sha>"']

Without a release it loads the dump taken before the release the newest rollback moved away
from (the database as it was before that release's migrations). One host per run: dumps are
per host, and a database several hosts share must be loaded once. Takes the deploy lock.
"""

from pyinfra import host

from operations import lock, restore
from operations.database import Database
from operations.live import deploy_for

database = Database.from_host_data(host.data)
if database is None:
    raise SystemExit("atomic-deploy: the client describes no database: nothing to restore")
deploy = deploy_for(host.data, host.data.get("release"))
take_over = host.data.get("take_over_lock") is True
lock.lock_held(name="deploy lock held", deploy=deploy, take_over=take_over)
restore.dump_restored(
    name=f"dump loaded into {database.name}",
    deploy=deploy,
    database=database,
    release=host.data.get("release"),
)
lock.lock_released(name="deploy lock released", deploy=deploy)
