"""pyinfra settings for every run from this folder (loaded from the working directory)."""

from pyinfra import config

from operations.config import refuse_client_file_as_inventory

# A host that fails (e.g. to populate the release) stops the run before the next operation
# on every host: no host switches `current` while another one could not follow.
config.FAIL_PERCENT = 0
config.REQUIRE_PYINFRA_VERSION = ">=3.10,<4"

# `pyinfra inventories/client1.yml ...`: say to pass the .py beside it, before pyinfra execs
# the YAML as Python (a SyntaxError traceback). This file is the only code of ours pyinfra
# runs before it loads the inventory.
refuse_client_file_as_inventory()
