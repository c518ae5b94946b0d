"""systemd's notification protocol spoken to a real unix datagram socket, as systemd listens."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailflow.systemd_notify import Systemd


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield path, sock
    sock.close()


def _received(sock: socket.socket) -> list[str]:
    out = []
    sock.settimeout(0.2)
    try:
        while True:
            out.append(sock.recv(4096).decode())
    except TimeoutError:
        return out


def test_ready_once_then_status_watchdog_and_stopping(notify_socket: tuple[str, socket.socket]) -> None:
    path, sock = notify_socket
    systemd = Systemd({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())})
    assert systemd.ping_seconds == 15.0   # half of WatchdogSec
    systemd.ready("running")
    systemd.ready("running")   # unchanged: nothing sent
    systemd.ready("1 step(s) failed")
    systemd.watchdog()
    systemd.stopping()
    assert _received(sock) == ["READY=1\nSTATUS=running", "STATUS=1 step(s) failed", "WATCHDOG=1", "STOPPING=1"]


def test_a_socket_nobody_reads_never_blocks_the_daemon(notify_socket: tuple[str, socket.socket],
                                                       caplog: pytest.LogCaptureFixture) -> None:
    path, _sock = notify_socket   # bound, never read: its queue fills up
    systemd = Systemd({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"})
    for _ in range(2000):
        systemd.watchdog()
    assert "could not notify systemd (WATCHDOG)" in caplog.text


def test_abstract_socket_address(tmp_path: Path) -> None:
    name = f"mailflow-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    try:
        Systemd({"NOTIFY_SOCKET": "@" + name}).ready()
        assert _received(sock) == ["READY=1"]
    finally:
        sock.close()


def test_nothing_without_systemd_and_no_pings_meant_for_another_process(
        notify_socket: tuple[str, socket.socket]) -> None:
    assert Systemd({}).enabled is False
    Systemd({}).ready()   # no socket: nothing to do, no error
    path, sock = notify_socket
    other = Systemd({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"})
    assert other.ping_seconds is None
    other.watchdog()
    assert _received(sock) == []
