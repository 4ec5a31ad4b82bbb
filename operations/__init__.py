"""atomic-deploy: zero-downtime, atomic releases as pyinfra wanted states.

`operations.states` holds the wanted states the deploy files declare (one module each); the
modules here serve them: the client (`config`, `release_name`, `upload`, `layout`), a run
(`run`, `context`, `common`, `pyinfra_adapter`) and the host (`facts`, `deploy_log`, `plan`,
`manifest`, `rsync`). Map and data flow: docs/architecture.md.
"""

import os
import sys

# pyinfra turns bytecode writing off before it loads inventories (it execs deploy files and
# wants no .pyc beside them). Those are exec'd, not imported, so turning it back on only lets
# Python cache this package's compiled modules, as usual, instead of compiling them on every
# run (~60 ms). An explicit PYTHONDONTWRITEBYTECODE is respected.
if not os.environ.get("PYTHONDONTWRITEBYTECODE"):
    sys.dont_write_bytecode = False
