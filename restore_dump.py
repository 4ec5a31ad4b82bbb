"""Load the database dump taken before a release: the explicit step after a rollback.

pyinfra inventories/client1.py restore_dump.py --limit web1 --dry
    # says which dump would be loaded into which database, changes nothing
pyinfra inventories/client1.py restore_dump.py --limit web1 [--data 'release="<sha>"']

Without a release it loads the dump taken before the release the newest rollback moved away
from (the database as it was before that release's migrations). One host per run: dumps are
per host, and a database several hosts share must be loaded once. Takes the deploy lock.
"""

from pyinfra import host

from operations.run import HostRun
from operations.states import restore

run = HostRun.for_host(host.data.get("release"), existing=True)
if run.database is None:
    raise SystemExit("atomic-deploy: the client describes no database: nothing to restore")

with run.guarded("restore"):  # the deploy lock: no deploy runs while the database is loaded
    restore.dump_restored(
        name=f"dump loaded into {run.database.name}",
        deploy=run.deploy,
        database=run.database,
        release=host.data.get("release"),
    )
