"""IDLE reading with a scripted server: a response split across TCP writes is read whole
(imapclient's non-blocking idle_check() aborted on it), and EOF ends IDLE as a drop."""

from __future__ import annotations

import socket
import threading
import time

from mailflow.connectors import MemorySyncStateStore
from mailflow.sources.imap import ImapSettings, ImapSource


def scripted_server(after_idle: list[tuple[float, bytes | None]]) -> tuple[int, threading.Thread]:
    """Answers login/select/search, then on IDLE sends each chunk after its pause
    (None: close the connection)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        listener.close()
        f = conn.makefile("rb")
        conn.sendall(b"* OK [CAPABILITY IMAP4rev1 IDLE MOVE UIDPLUS] ready\r\n")
        idle_tag = b""
        while line := f.readline():
            if line.strip().upper() == b"DONE":
                conn.sendall(idle_tag + b" OK idle done\r\n")
                continue
            tag, cmd = line.split(b" ", 2)[:2]
            cmd = cmd.strip().upper()
            if cmd == b"LOGIN":
                conn.sendall(tag + b" OK logged in\r\n")
            elif cmd == b"CAPABILITY":
                conn.sendall(b"* CAPABILITY IMAP4rev1 IDLE MOVE UIDPLUS\r\n" + tag + b" OK done\r\n")
            elif cmd == b"SELECT":
                conn.sendall(b"* 0 EXISTS\r\n* OK [UIDVALIDITY 9] ok\r\n* OK [UIDNEXT 1] ok\r\n"
                             + tag + b" OK [READ-WRITE] done\r\n")
            elif cmd in (b"NOOP", b"UID"):
                conn.sendall(b"* SEARCH\r\n" + tag + b" OK done\r\n" if cmd == b"UID"
                             else tag + b" OK done\r\n")
            elif cmd == b"IDLE":
                idle_tag = tag
                conn.sendall(b"+ idling\r\n")
                for pause, chunk in after_idle:
                    time.sleep(pause)
                    if chunk is None:
                        conn.close()
                        return
                    conn.sendall(chunk)
            elif cmd == b"LOGOUT":
                conn.sendall(b"* BYE\r\n" + tag + b" OK done\r\n")
                break
        conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return port, t


def source(port: int) -> ImapSource:
    return ImapSource(ImapSettings(host="127.0.0.1", port=port, username="u", tls="none",
                                   timeout=3), password="p", state_store=MemorySyncStateStore())


def test_split_exists_line_is_read_whole() -> None:
    port, t = scripted_server([(0.1, b"* 1 EXI"), (0.2, b"STS\r\n")])
    src = source(port)
    assert list(src.fetch()) == []
    assert src.wait_for_mail(5) is True
    assert src._conn is not None  # noqa: SLF001 - kept: not mistaken for a broken connection


def test_eof_during_idle_is_a_drop_not_a_quiet_timeout() -> None:
    port, t = scripted_server([(0.2, None)])
    src = source(port)
    assert list(src.fetch()) == []
    t0 = time.monotonic()
    assert src.wait_for_mail(5) is True
    assert time.monotonic() - t0 < 2 and src._conn is None  # noqa: SLF001 - the dropped connection is the point
