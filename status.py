"""Show each host's live release, kept releases, newest dump, lock, drift and recent history.

pyinfra inventories/client1.py status.py --dry                            # text
pyinfra -y inventories/client1.py status.py --data status_json=true      # one JSON object per host
pyinfra -y inventories/client1.py status.py --data status_lines=30       # more history

Changes nothing, with or without --dry: the report goes to stdout, pyinfra's own output to
stderr.
"""

from pyinfra import host

from operations.database import Database
from operations.layout import Deploy
from operations.live import deploy_for
from operations.run import setting
from operations.states import status

lines = host.data.get("status_lines", 10)
if isinstance(lines, bool) or not isinstance(lines, int) or lines < 0:
    raise SystemExit(f"atomic-deploy: --data status_lines={lines!r}: expected a whole number")
status.status_shown(
    name="status shown",
    deploy=deploy_for(setting("deploy", Deploy), host.data.get("release")),
    database=setting("database", Database, optional=True),
    as_json=host.data.get("status_json") is True,
    lines=lines,
)
