"""atomic-deploy: zero-downtime, atomic releases as pyinfra wanted states.

One module per wanted state (preflight, tree, release, shared, switch, prune), in the order
deploy.py declares them. Beside them: `facts` (the host's deploy root in one round trip),
`plan` (pure decisions), `layout` (names and paths), `config` (the client description),
`release_name`, `rsync` (the upload) and `barrier` (the all-hosts guard before the switch).
"""

import os
import sys

# pyinfra turns bytecode writing off before it loads inventories (it execs deploy files and
# wants no .pyc beside them). Those are exec'd, not imported, so turning it back on only lets
# Python cache this package's compiled modules, as usual, instead of compiling them on every
# run (~60 ms). An explicit PYTHONDONTWRITEBYTECODE is respected.
if not os.environ.get("PYTHONDONTWRITEBYTECODE"):
    sys.dont_write_bytecode = False
