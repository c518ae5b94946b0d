"""`mailflow run` as a subprocess under a stand-in for systemd: a real notification socket, a real
IMAP server (pymap) reached through a TCP proxy the test can silence, a real SMTP server.

READY=1 after the first pass and WATCHDOG=1 pings arrive on the socket; /healthz answers 200,
goes 503 (mailbox-stale) once the mailbox has been unreachable for the configured threshold, back
to 200 once it answers again; SIGTERM: STOPPING=1 and exit 0. Time passes for real here (a
subprocess on the system clock), so the thresholds are seconds and the test polls the process's
state, never sleeping for a fixed time."""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from pathlib import Path

from mailflow.demo_servers import free_port, start_imap_server, start_smtp_server
from tests.servers.proxy import TcpProxy

from .daemon_process import IMAP_PASSWORD, IMAP_USER, DaemonProcess, imap_smtp_config, poll

STALE_SECONDS = 6


def _healthz(port: int) -> tuple[int, dict]:  # type: ignore[type-arg]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return 0, {}   # not listening yet


class NotifyListener:
    """What systemd does with $NOTIFY_SOCKET: read every datagram as it comes."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.heard: list[str] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            try:
                self.heard.append(self.sock.recv(4096).decode())
            except OSError:
                return

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(5)


def test_healthz_follows_the_mailbox_and_systemd_hears_ready_watchdog_stopping(tmp_path: Path) -> None:
    imap = start_imap_server(IMAP_USER, IMAP_PASSWORD)
    smtp = start_smtp_server()
    proxy = TcpProxy(imap.host, imap.port)
    status_port = free_port()
    config = imap_smtp_config(
        tmp_path, f"sqlite:///{tmp_path / 'mailflow.db'}", proxy.port, smtp.port, imap_timeout=1,
        extra=f"mailbox_stale_minutes = {STALE_SECONDS / 60}\n[status]\nlisten = \"127.0.0.1:{status_port}\"\n")
    systemd = NotifyListener(tmp_path / "notify")
    daemon = DaemonProcess(config, env={"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "1000000"})
    try:
        poll(lambda: any(m.startswith("READY=1") for m in systemd.heard), 120, "READY=1 from the daemon")
        poll(lambda: _healthz(status_port)[1].get("partnerships", {}).get("SSP", {}).get("last_mailbox_read"),
             60, "a first successful mailbox read")
        code, body = _healthz(status_port)
        assert code == 200 and body["healthy"] is True and body["database"]["reachable"] is True

        proxy.cut()
        proxy.blackhole()   # the mailbox goes silent: connections open, nothing answers
        poll(lambda: _healthz(status_port)[0] == 503, 60 + STALE_SECONDS, "/healthz 503 with the mailbox gone")
        code, body = _healthz(status_port)
        assert body["healthy"] is False
        assert [p["code"] for p in body["partnerships"]["SSP"]["problems"]] == ["mailbox-stale"]
        daemon.wait_for_line(r"SSP: mailbox step failed")

        proxy.heal()
        poll(lambda: _healthz(status_port)[0] == 200, 60, "/healthz 200 once the mailbox answers again")
        with urllib.request.urlopen(f"http://127.0.0.1:{status_port}/metrics", timeout=10) as response:
            metrics = response.read().decode()
        assert 'mailflow_step_errors_total{partnership="SSP",step="mailbox"}' in metrics

        assert daemon.terminate() == 0, daemon.stderr[-3000:]
        poll(lambda: systemd.heard[-1:] == ["STOPPING=1"], 10, "STOPPING=1")
    finally:
        daemon.kill()
        systemd.close()
        proxy.stop()
        imap.stop()
        smtp.stop()
    heard = systemd.heard
    assert sum(m.startswith("READY=1") for m in heard) == 1
    assert heard.count("WATCHDOG=1") >= 2
