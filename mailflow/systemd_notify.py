"""systemd's notification protocol (Type=notify): READY=1 once the daemon has done its first pass,
WATCHDOG=1 while its main loop turns, STOPPING=1 on the way out. Nothing at all when systemd did
not start us (no $NOTIFY_SOCKET).

The protocol is one datagram of newline-separated assignments to the unix socket systemd names
(sd_notify(3)); a name starting with "@" is in the abstract namespace. A failed send is logged and
ignored: systemd's absence or a full socket must never stop the daemon.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


class Systemd:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self.enabled = address.startswith(("/", "@"))
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._ready = False
        self._status = ""
        self._failing = False
        # WatchdogSec= gives WATCHDOG_USEC; ping at half of it (sd_watchdog_enabled(3)'s advice),
        # and only when the variable is meant for this process.
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        self.ping_seconds: float | None = int(usec) / 2_000_000 if self.enabled and usec.isdigit() and mine else None

    def notify(self, state: str) -> None:
        if not self.enabled:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                # Never block the daemon on a reader that is not reading (systemd busy or gone).
                sock.sendto(state.encode(), socket.MSG_DONTWAIT, self._address)
            self._failing = False
        except OSError as exc:
            if not self._failing:   # once per run of failures, not once a ping
                log.warning("could not notify systemd (%s): %s", state.split("=")[0], exc.strerror)
            self._failing = True

    def ready(self, status: str = "") -> None:
        """READY=1 the first time only; STATUS= whenever it changes (`systemctl status` shows it)."""
        lines = [] if self._ready else ["READY=1"]
        self._ready = True
        if status and status != self._status:
            lines.append(f"STATUS={status}")
            self._status = status
        if lines:
            self.notify("\n".join(lines))

    def watchdog(self) -> None:
        if self.ping_seconds is not None:
            self.notify("WATCHDOG=1")

    def stopping(self) -> None:
        self.notify("STOPPING=1")
