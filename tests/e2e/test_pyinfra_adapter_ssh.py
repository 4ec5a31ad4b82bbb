"""The adapter's hold on pyinfra's SSH connection, checked against a real sshd: if pyinfra
changes how it keeps the paramiko client, this fails (and only the adapter needs a change)."""

from __future__ import annotations

import socket

from pyinfra.api import Config, Inventory, State, StringCommand
from pyinfra.api.connect import connect_all

from operations import pyinfra_adapter as adapter


def test_the_ssh_connection_sends_each_command_at_once(ssh_hosts):
    state = State(Inventory(([("web1", ssh_hosts[0].pyinfra_data())], {})), Config())
    connect_all(state)
    host = state.inventory.get_host("web1")
    try:
        sock = host.connector.client.get_transport().sock
        nagle_off = (socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert sock.getsockopt(*nagle_off) == 0  # paramiko's default: each command waits
        assert adapter.send_packets_at_once(host)
        assert sock.getsockopt(*nagle_off) != 0
        ok, output = adapter.run_now(host, StringCommand("echo", "still", "connected"))
        assert ok and output.stdout_lines == ["still connected"]
    finally:
        host.disconnect()


def test_a_local_connection_is_left_alone():
    state = State(Inventory((["@local"], {})), Config())
    connect_all(state)
    assert adapter.send_packets_at_once(state.inventory.get_host("@local")) is False
