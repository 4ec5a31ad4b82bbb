"""Test support: throwaway sshd's, MariaDB, the example site, client files, pyinfra runs,
snapshots. Everything here runs as root (CI does); the deployed-to "servers" are sshd's on
127.0.0.1 that only let the unprivileged `deploy` user in (see scripts/test-env.sh).
"""
