# The embedded demo: deploys example-site/ into .demo/ of this checkout, no server needed.
from pathlib import Path

from operations.config import inventory_hosts

hosts = inventory_hosts(__file__, root=Path(__file__).resolve().parent.parent / ".demo")
