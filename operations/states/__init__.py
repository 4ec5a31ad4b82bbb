"""The wanted states: one module per state a deploy file declares (deploy.py, rollback.py,
status.py, restore_dump.py). Each operation reads the host (facts), says what it would change
and yields only what differs; the machinery they share lives one level up (see
docs/architecture.md).
"""
