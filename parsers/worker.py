"""parse_message with a hard time limit: one persistent worker process parses message after message;
a parse that takes longer than the limit has its process killed (and a fresh one started for the
next message), and the message comes back rejected with the reason, so it is quarantined and the
mailbox moves on. Linear-time patterns and the header bounds make this rare; the limit makes it
certain, whatever a library does with a hostile attachment.

The worker is a fresh interpreter (`python -m parsers.worker`: never a fork of the daemon, which has
threads, and never a re-import of the caller's main module), started once and warmed up with one
small message so the first real one does not pay for imports and compiled patterns. Messages and
results travel as pickles over two pipes.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection

from parsers.bounds import message_id_of
from parsers.model import ParsedMessage, ParseLimits

log = logging.getLogger(__name__)

ParseFunction = Callable[[bytes, ParseLimits], ParsedMessage]
_WARM_UP = (b"From: warm.up@example.org\r\nSubject: warm up\r\nContent-Type: text/plain\r\n\r\n"
            b"Name of adult: nobody\r\n")
_START_SECONDS = 120.0   # importing the parsers on a busy machine; not the per-message limit


def _serve(inbox: Connection, outbox: Connection, target: ParseFunction) -> None:
    """The worker's loop: (raw, limits) in, ParsedMessage out, until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the parent's to handle
    # Nothing logged in here reaches the daemon's log or stderr (no message content can leak).
    logging.getLogger().addHandler(logging.NullHandler())
    target(_WARM_UP, ParseLimits())
    outbox.send("ready")
    while True:
        try:
            raw, limits = inbox.recv()
        except (EOFError, OSError):
            return
        outbox.send(target(raw, limits))


def _load(target: str) -> ParseFunction:
    module, _, name = target.partition(":")
    func: ParseFunction = getattr(importlib.import_module(module), name)
    return func


class WorkerUnavailable(Exception):
    """The worker process could not be started."""


class ParseWorker:
    """One worker process, used by one caller at a time (a lock serialises callers)."""

    def __init__(self, target: str = "parsers.parse:parse_message") -> None:
        self._target = target          # "module:function", imported in the worker
        self._proc: subprocess.Popen[bytes] | None = None
        self._send: Connection | None = None
        self._recv: Connection | None = None
        self._lock = threading.Lock()
        self.started = 0          # processes started (1 + restarts)

    def parse(self, raw: bytes, limits: ParseLimits | None = None) -> ParsedMessage:
        limits = limits or ParseLimits()
        timeout = limits.parse_timeout_seconds
        if timeout <= 0:
            return _load(self._target)(raw, limits)
        with self._lock:
            for attempt in (1, 2):
                try:
                    send, recv = self._ready()
                except WorkerUnavailable:
                    # Mail must keep flowing: parse here, without the time limit, and say so.
                    log.error("the parser process cannot start: parsing without a time limit")
                    return _load(self._target)(raw, limits)
                try:
                    send.send((raw, limits))
                    if recv.poll(timeout):
                        result: ParsedMessage = recv.recv()
                        return result
                except (EOFError, OSError):
                    # The process died under the message (a crash in a C library, a kill):
                    # once may be chance, twice is the message.
                    self._stop()
                    if attempt == 2:
                        return _rejected(raw, "the parser process died on this message")
                    continue
                self._stop()
                log.warning("parse stopped after %g s; parser process restarted", timeout)
                return _rejected(raw, f"parsing took longer than {timeout:g} s")
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _ready(self) -> tuple[Connection, Connection]:
        if self._send is not None and self._recv is not None and self._proc is not None \
                and self._proc.poll() is None:
            return self._send, self._recv
        self._stop()
        to_child, from_parent = os.pipe()
        from_child, to_parent = os.pipe()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "parsers.worker", str(to_child), str(to_parent), self._target],
                pass_fds=(to_child, to_parent), stdin=subprocess.DEVNULL, env=env)
        except OSError as exc:
            for fd in (to_child, from_parent, from_child, to_parent):
                os.close(fd)
            raise WorkerUnavailable(str(exc)) from None
        os.close(to_child)
        os.close(to_parent)
        self._proc = proc
        self._send = Connection(from_parent, readable=False)
        self._recv = Connection(from_child, writable=False)
        self.started += 1
        try:
            ready = self._recv.poll(_START_SECONDS) and self._recv.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            self._stop()
            raise WorkerUnavailable("the parser process did not start")
        return self._send, self._recv

    def _stop(self) -> None:
        proc, send, recv = self._proc, self._send, self._recv
        self._proc = self._send = self._recv = None
        for conn in (send, recv):
            if conn is not None:
                conn.close()
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                log.error("the parser process %s did not stop", proc.pid)


def _rejected(raw: bytes, reason: str) -> ParsedMessage:
    pm = ParsedMessage(kind="unrelated", rejected=reason, sha256=hashlib.sha256(raw).hexdigest())
    pm.message_id = message_id_of(raw)
    pm.warnings.append(f"rejected: {reason}")
    return pm


_shared: ParseWorker | None = None
_shared_lock = threading.Lock()


def shared_worker() -> ParseWorker:
    """The process-wide worker (started on first use, stopped at exit)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ParseWorker()
            atexit.register(_shared.close)
        return _shared


def parse_in_worker(raw: bytes, limits: ParseLimits | None = None) -> ParsedMessage:
    """parse_message(raw, limits) in the shared worker, stopped after limits.parse_timeout_seconds."""
    return shared_worker().parse(raw, limits)


if __name__ == "__main__":   # the worker process: python -m parsers.worker IN_FD OUT_FD TARGET
    _serve(Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False),
           _load(sys.argv[3]))
