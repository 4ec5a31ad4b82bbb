from operations.config import inventory_hosts

hosts = inventory_hosts(__file__)
