"""Latency: message appended to the IMAP server -> acknowledgement accepted by the SMTP server.

Real servers on loopback (pymap, aiosmtpd), the real ImapSource and SmtpTransport. A minimal
daemon loop runs in a thread: fetch, send an acknowledgement, settle (MOVE), then wait for mail
(IDLE) or sleep for the poll interval. Messages are appended one at a time by another IMAP
connection, each after the previous acknowledgement plus a random pause (up to the poll
interval), so arrivals fall at random points of the loop's cycle and the figures are
per-message latency without queueing. The clock starts when APPEND has completed.

Run: .venv/bin/python -m bench.bench_latency [--messages 200] [--poll-seconds 0.5]
     [--server pymap|dovecot]  (~2 min). On pymap about 45 ms of each figure is pymap's own
     UID SEARCH (measured per command); Dovecot delays IDLE notifications by design (its
     NOTIFY_DELAY_MSECS, 500 ms), so its IDLE figure sits near 0.5 s.
The production default poll interval is 60 s: polling latency scales with it (about half of
it on average), IDLE latency does not.
"""

from __future__ import annotations

import argparse
import random
import statistics
import threading
import time
from email.utils import make_msgid
from typing import Any

from mailflow.connectors import MemorySyncStateStore
from mailflow.demo_servers import start_imap_server, start_smtp_server
from mailflow.sources.base import Outcome
from mailflow.sources.imap import ImapSettings, ImapSource
from mailflow.transports.base import OutgoingMail
from mailflow.transports.smtp import SmtpSettings, SmtpTransport
from tests.servers.dovecot import start_dovecot_server

USER, PASSWORD = "bench@example.org", "bench-pw"


def _message(n: int) -> bytes:
    return (f"From: raiser@example.org\r\nTo: {USER}\r\nSubject: bench {n}\r\n"
            f"Message-ID: {make_msgid(domain='bench.test')}\r\n\r\nBody {n}\r\n").encode()


def _ack(n: int) -> OutgoingMail:
    mid = make_msgid(domain="mailflow.test")
    raw = (f"From: {USER}\r\nTo: raiser@example.org\r\nSubject: Received\r\n"
           f"Message-ID: {mid}\r\nAuto-Submitted: auto-replied\r\n\r\nReceived.\r\n").encode()
    return OutgoingMail(mid, USER, ("raiser@example.org",), raw)


def measure(messages: int, idle: bool, poll_seconds: float, server: str = "pymap") -> list[float]:
    imap: Any = start_imap_server(USER, PASSWORD) if server == "pymap" \
        else start_dovecot_server(USER, PASSWORD)
    if imap is None:
        raise SystemExit("dovecot is not installed")
    smtp = start_smtp_server()
    settings = ImapSettings(host=imap.host, port=imap.port, username=USER, tls="none",
                            use_idle=idle, poll_seconds=poll_seconds, timeout=10)
    source = ImapSource(settings, password=PASSWORD, state_store=MemorySyncStateStore())
    transport = SmtpTransport(SmtpSettings(smtp.host, smtp.port, tls="none"))
    stop = threading.Event()

    def loop() -> None:
        n = 0
        while not stop.is_set():
            for mail in source.fetch():
                n += 1
                transport.send(_ack(n))
                source.settle(mail, Outcome.PROCESSED)
            source.wait_for_mail(1.0)

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    appender = imap.client()
    latencies: list[float] = []
    try:
        rng = random.Random(6)
        for i in range(messages):
            time.sleep(rng.uniform(0, poll_seconds))   # arrive anywhere in the loop's cycle
            appender.append("INBOX", _message(i))
            t0 = time.perf_counter()
            if not smtp.wait_for(i + 1, timeout=30):
                raise RuntimeError(f"no acknowledgement for message {i} within 30 s")
            latencies.append(time.perf_counter() - t0)
    finally:
        stop.set()
        appender.logout()
        worker.join(5)
        source.close()
        transport.close()
        smtp.stop()
        imap.close() if server == "dovecot" else imap.stop()
    return latencies


def measure_app(messages: int, idle: bool, poll_seconds: float) -> list[float]:
    """The same through the real application: `mailflow.app.App` and the daemon's `run_pass`
    (parse, case opened, acknowledgement queued in the database, outbox drained by SMTP)."""
    import os
    import secrets
    import tempfile
    from pathlib import Path

    from mailflow.app import App
    from mailflow.clock import SystemClock
    from mailflow.daemon import run_pass
    from mailflow.demo import USER as DEMO_USER
    from mailflow.demo import _config, _form

    workdir = Path(tempfile.mkdtemp(prefix="mailflow-bench-"))
    password = secrets.token_hex(8)
    os.environ["MAILFLOW_DEMO_IMAP_PASSWORD"] = password
    imap = start_imap_server(DEMO_USER, password)
    smtp = start_smtp_server()
    config = _config(workdir, imap.port, smtp.port)
    for p in config.partnerships:                   # the demo polls; the bench compares both
        p.mailbox["idle"] = idle  # type: ignore[index]
        p.mailbox["poll_seconds"] = poll_seconds  # type: ignore[index]
    app = App.open(config, SystemClock())
    source = app.runtimes()[0].source
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            run_pass(app)
            if idle:
                source.wait_for_mail(1.0)
            else:
                stop.wait(poll_seconds)

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    appender = imap.client()
    base = _form()
    latencies: list[float] = []
    try:
        rng = random.Random(6)
        for i in range(messages):
            # A different raiser each time: one sender's flood limit must not kick in.
            raw = base.replace(b"jo.example@", f"jo.example{i}@".encode())
            raw = raw.replace(b"Message-ID: <", f"Message-ID: <b{i}.".encode(), 1)
            raiser = f"jo.example{i}@gwh.nhs.example.org"
            time.sleep(rng.uniform(0, poll_seconds))
            appender.append("INBOX", raw)
            t0 = time.perf_counter()
            if not smtp.wait_until(lambda m, r=raiser: r in m.rcpt_tos, timeout=30):
                raise RuntimeError(f"no acknowledgement for message {i} within 30 s")
            latencies.append(time.perf_counter() - t0)
    finally:
        stop.set()
        appender.logout()
        worker.join(10)
        app.close()
        smtp.stop()
        imap.stop()
    return latencies


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--poll-seconds", type=float, default=0.5)
    ap.add_argument("--server", choices=["pymap", "dovecot"], default="pymap")
    ap.add_argument("--pipeline", choices=["minimal", "app"], default="app",
                    help="the real application (default) or a bare fetch/send/settle loop")
    args = ap.parse_args(argv)
    if args.pipeline == "app" and args.server != "pymap":
        raise SystemExit("--pipeline app runs on pymap (as `mailflow demo` does)")
    print(f"append -> acknowledgement accepted, {args.messages} messages, "
          f"{args.server} + aiosmtpd on loopback, {args.pipeline} pipeline")
    for label, idle in (("IDLE", True), (f"polling every {args.poll_seconds:g} s", False)):
        if args.pipeline == "app":
            lat = measure_app(args.messages, idle, args.poll_seconds)
        else:
            lat = measure(args.messages, idle, args.poll_seconds, args.server)
        print(f"  {label:<24} p50 {_pct(lat, 50) * 1000:8.1f} ms   "
              f"p95 {_pct(lat, 95) * 1000:8.1f} ms   max {max(lat) * 1000:8.1f} ms   "
              f"mean {statistics.mean(lat) * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
