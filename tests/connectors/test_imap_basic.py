"""ImapSource against real servers: fetch, settle by MOVE, nothing handed out twice."""

from __future__ import annotations

import datetime as dt

from mailflow.sources.base import Outcome

from .conftest import imap_source, make_mail


def test_fetch_and_settle_moves_and_remembers(imap_server) -> None:
    mids = []
    for _ in range(3):
        mid, raw = make_mail()
        mids.append(mid)
        imap_server.append(raw)
    source = imap_source(imap_server)
    got = list(source.fetch())
    assert [m.raw.count(mid.encode()) for m, mid in zip(got, mids, strict=True)] == [1, 1, 1]
    assert all(m.source_id.startswith("imap:INBOX:") for m in got)
    for mail, outcome in zip(got, [Outcome.PROCESSED, Outcome.LEFT, Outcome.QUARANTINED],
                             strict=True):
        source.settle(mail, outcome)
    assert list(source.fetch()) == []          # LEFT mail is remembered, not handed out again
    assert len(imap_server.uids("INBOX")) == 1
    assert mids[0].encode() in imap_server.messages("Processed")[0]
    assert mids[2].encode() in imap_server.messages("Quarantine")[0]
    source.close()


def test_each_message_comes_with_when_the_server_received_it(imap_server) -> None:
    """INTERNALDATE, read in the size check's FETCH: what the sender's hourly limit counts by, so a
    backlog read in one go is judged as it arrived. APPEND sets it (as a delivery does)."""
    when = [dt.datetime(2026, 11, 30, 8, 5, tzinfo=dt.UTC), dt.datetime(2026, 12, 1, 16, 40, 12, tzinfo=dt.UTC)]
    with imap_server.client() as c:
        for at in when:
            c.append("INBOX", make_mail()[1], msg_time=at.astimezone(dt.timezone(dt.timedelta(hours=-5))))
    source = imap_source(imap_server)
    got = list(source.fetch())
    assert [m.arrived_at for m in got] == when
    assert all(m.arrived_at is not None and m.arrived_at.utcoffset() == dt.timedelta(0) for m in got)
    source.close()
