"""pyinfra settings for every run from this folder (loaded from the working directory)."""

from pyinfra import config

# A host that fails (e.g. to populate the release) stops the run before the next operation
# on every host: no host switches `current` while another one could not follow.
config.FAIL_PERCENT = 0
config.REQUIRE_PYINFRA_VERSION = ">=3.10,<4"
