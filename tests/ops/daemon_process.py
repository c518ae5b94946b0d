"""`mailflow run` as a real subprocess against real loopback servers, its stderr watched line by line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMAP_USER, IMAP_PASSWORD = "safeguarding", "ops-test-pw"


def imap_smtp_config(tmp: Path, db_url: str, imap_port: int, smtp_port: int, extra: str = "",
                     imap_timeout: int = 10) -> Path:
    from tests.conftest import write_config

    return write_config(
        tmp, db_url, extra=f"[daemon]\npoll_seconds = 1\nsweep_seconds = 1\n{extra}",
        mailbox=(f'kind = "imap"\nhost = "127.0.0.1"\nport = {imap_port}\ntls = "none"\nusername = "{IMAP_USER}"\n'
                 f'password_env = "MAILFLOW_TEST_IMAP_PASSWORD"\nidle = false\ntimeout = {imap_timeout}'),
        transport=f'kind = "smtp"\nhost = "127.0.0.1"\nport = {smtp_port}\ntls = "none"\nauth = "none"')


class DaemonProcess:
    def __init__(self, config: Path, *args: str, env: dict[str, str] | None = None) -> None:
        exe = Path(sys.executable).with_name("mailflow")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mailflow"]
        self.env = {**os.environ, "MAILFLOW_TEST_IMAP_PASSWORD": IMAP_PASSWORD, "PYTHONPATH": str(ROOT),
                    **(env or {})}
        self.proc = subprocess.Popen([*cmd, "--config", str(config), "run", *args], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     cwd=config.parent)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_line(self, pattern: str, timeout: float = 60.0) -> str:
        """The first stderr line matching `pattern` (a real process's output; bounded wait)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    if regex.search(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"no line matching {pattern!r}:\n{self.stderr[-3000:]}")
                self._changed.wait(min(left, 0.5))

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def terminate(self, timeout: float = 60.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"still running {timeout:.0f} s after SIGTERM:\n{self.stderr[-3000:]}") from None
        self._reader.join(10)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def poll(predicate: Callable[[], object], timeout: float, what: str, every: float = 0.1) -> None:
    """Wait for a real process's state to change (bounded)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)
