"""ImapSource against real servers: fetch, settle by MOVE, nothing handed out twice."""

from __future__ import annotations

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
