"""ImapSource against pymap and Dovecot: IDLE, restarts, cut and silent connections,
UIDVALIDITY changes, no MOVE, oversize mail; nothing lost, nothing processed twice."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from mailflow.connectors import MemorySyncStateStore
from mailflow.sources.base import Outcome
from mailflow.sources.imap import ImapSource
from tests.servers.dovecot import DovecotServer, start_dovecot_server
from tests.servers.proxy import start_tcp_proxy

from .conftest import PASSWORD, USER, imap_source, make_mail
from .helpers import MiniPipeline, later, message_id


def timed_wait(source: ImapSource, timeout: float) -> tuple[bool, float]:
    t0 = time.monotonic()
    woke = source.wait_for_mail(timeout)
    return woke, time.monotonic() - t0


def test_idle_wakes_on_arrival(imap_server) -> None:
    source = imap_source(imap_server)
    assert list(source.fetch()) == []
    mid, raw = make_mail()
    later(0.2, lambda: imap_server.append(raw))
    woke, took = timed_wait(source, 10)
    assert woke and took < 5
    assert [message_id(m.raw) for m in source.fetch()] == [mid]
    source.close()


def test_reconcile_search_finds_mail_idle_never_announced(imap_server) -> None:
    class DeafIdle(ImapSource):
        def _idle_until(self, conn, until):  # an IDLE that never reports anything
            while time.monotonic() < until:
                time.sleep(0.02)
            return False

    source = imap_source(imap_server, cls=DeafIdle, reconcile_seconds=0.3)
    assert list(source.fetch()) == []
    imap_server.append(make_mail()[1])
    woke, took = timed_wait(source, 10)
    assert woke and took < 3


def test_server_restart_mid_idle_loses_nothing(imap_server) -> None:
    source = imap_source(imap_server)
    pipe = MiniPipeline(source)
    first = [make_mail() for _ in range(2)]
    for _, raw in first:
        imap_server.append(raw)
    assert pipe.run_once() == 2
    restart = later(0.3, imap_server.restart)
    woke, took = timed_wait(source, 15)
    assert woke and took < 10, "a dropped connection must end IDLE, not look like a quiet one"
    restart.join()
    second = [make_mail() for _ in range(2)]
    for _, raw in second:
        imap_server.append(raw)
    assert pipe.run_once() == 2                 # reconnects by itself
    assert set(pipe.committed) == {m for m, _ in first + second}
    assert all(n == 1 for n in pipe.committed.values())
    assert imap_server.uids("INBOX") == []


def test_connection_cut_during_idle(imap_server) -> None:
    proxy = start_tcp_proxy(imap_server.host, imap_server.port)
    try:
        source = imap_source(proxy)
        assert list(source.fetch()) == []
        later(0.3, proxy.cut)
        woke, took = timed_wait(source, 15)
        assert woke and took < 5
        mid, raw = make_mail()
        imap_server.append(raw)
        assert [message_id(m.raw) for m in source.fetch()] == [mid]
    finally:
        proxy.stop()


def test_silently_dropped_connection_detected_at_idle_renewal(imap_server) -> None:
    proxy = start_tcp_proxy(imap_server.host, imap_server.port)
    try:
        source = imap_source(proxy, idle_renew_seconds=0.5, timeout=1)
        assert list(source.fetch()) == []
        proxy.blackhole()                       # packets vanish: no FIN, no RST
        woke, took = timed_wait(source, 30)
        assert woke and took < 4                # renewal's DONE timed out
        proxy.heal()
        mid, raw = make_mail()
        imap_server.append(raw)
        assert [message_id(m.raw) for m in source.fetch()] == [mid]
    finally:
        proxy.stop()


def test_crash_between_commit_and_settle_is_settled_next_pass(imap_server) -> None:
    mails = [make_mail() for _ in range(3)]
    for _, raw in mails:
        imap_server.append(raw)
    source = imap_source(imap_server)
    pipe = MiniPipeline(source, crash_before_settle={mails[1][0]})
    with pytest.raises(RuntimeError):
        pipe.run_once()
    source.close()
    source = imap_source(imap_server, store=source._store)  # noqa: SLF001 - same sync state: a restarted daemon
    pipe.source = source
    assert pipe.run_once() == 1                 # the crashed one is only settled
    assert sorted(pipe.committed) == sorted(m for m, _ in mails)
    assert all(n == 1 for n in pipe.committed.values())
    assert imap_server.uids("INBOX") == []
    assert len(imap_server.uids("Processed")) == 3


def test_uidvalidity_change_rescans(imap_server) -> None:
    folder = "Referrals"
    imap_server.recreate_folder(folder)
    store = MemorySyncStateStore()
    source = imap_source(imap_server, store=store, folder=folder)
    unrelated, related = make_mail(), make_mail()
    imap_server.append(unrelated[1], folder)
    imap_server.append(related[1], folder)
    pipe = MiniPipeline(source, decide=lambda m: Outcome.LEFT
                        if message_id(m.raw) == unrelated[0] else Outcome.PROCESSED)
    assert pipe.run_once() == 2
    old = store.load(source.state_key, folder)
    assert old is not None and old.last_uid >= 2
    source.close()
    if isinstance(imap_server, DovecotServer):
        time.sleep(1.1)   # Dovecot derives UIDVALIDITY from the clock, in seconds
    imap_server.recreate_folder(folder)         # e.g. the mailbox was rebuilt by an admin
    newer = make_mail()
    imap_server.append(unrelated[1], folder)
    imap_server.append(newer[1], folder)
    assert pipe.run_once() == 1                 # both seen again; only `newer` is new
    new = store.load(source.state_key, folder)
    assert new is not None and new.uidvalidity != old.uidvalidity
    assert pipe.committed == {unrelated[0]: 1, related[0]: 1, newer[0]: 1}
    assert list(source.fetch()) == []


class ToldNoMove(ImapSource):
    """pymap always advertises MOVE: this client is made to ignore it."""

    def has_move(self) -> bool:
        return False


@pytest.fixture(params=["pymap", pytest.param("dovecot", marks=pytest.mark.dovecot),
                        pytest.param("dovecot-no-uidplus", marks=pytest.mark.dovecot)])
def server_without_move(request: pytest.FixtureRequest) -> Iterator[tuple[object, type[ImapSource]]]:
    """A server the client must settle on by COPY + \\Deleted + EXPUNGE."""
    if request.param == "pymap":
        yield request.getfixturevalue("pymap_server"), ToldNoMove
        return
    without = ("MOVE",) if request.param == "dovecot" else ("MOVE", "UIDPLUS")
    server = start_dovecot_server(USER, PASSWORD, without=without)
    if server is None:
        pytest.skip("dovecot binary not installed (apt-get install dovecot-imapd; .ci/run does)")
    yield server, ImapSource
    server.close()


def test_copy_expunge_when_move_is_missing(server_without_move) -> None:
    server, cls = server_without_move
    mails = [make_mail() for _ in range(3)]
    for _, raw in mails:
        server.append(raw)
    source = imap_source(server, cls=cls, processed_folder="Done")
    pipe = MiniPipeline(source)
    assert pipe.run_once() == 3
    assert not source.has_move()
    assert server.uids("INBOX") == []
    assert sorted(message_id(r) for r in server.messages("Done")) == sorted(m for m, _ in mails)
    assert list(source.fetch()) == []


def test_unrelated_mail_can_be_moved_aside(imap_server) -> None:
    imap_server.append(make_mail()[1])
    source = imap_source(imap_server, unrelated_folder="Not for us")
    pipe = MiniPipeline(source, decide=lambda m: Outcome.LEFT)
    assert pipe.run_once() == 1
    assert imap_server.uids("INBOX") == [] and len(imap_server.uids("Not for us")) == 1


def test_oversize_is_quarantined_without_download(imap_server) -> None:
    small, big = make_mail(), make_mail(size=20_000)
    imap_server.append(big[1])
    imap_server.append(small[1])
    source = imap_source(imap_server, max_message_bytes=10_000, batch_size=1)
    seen: list[tuple[int, int, str | None]] = []
    source.on_oversize = lambda uid, size, mid: seen.append((uid, size, mid))
    assert [message_id(m.raw) for m in source.fetch()] == [small[0]]
    assert len(seen) == 1 and seen[0][1] > 10_000 and seen[0][2] == big[0]
    assert [message_id(r) for r in imap_server.messages("Quarantine")] == [big[0]]


def test_many_messages_in_batches(imap_server) -> None:
    imap_server.append_many([make_mail()[1] for _ in range(23)])
    source = imap_source(imap_server, batch_size=5)
    pipe = MiniPipeline(source, decide=lambda m: Outcome.LEFT)
    assert pipe.run_once() == 23
    assert list(source.fetch()) == []
    assert len(imap_server.uids("INBOX")) == 23
