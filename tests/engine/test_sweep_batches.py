"""The sweep in batches: notices queued as drafts (rendered, composed by the sender, the bytes
then kept), a batch that fails redone a case at a time, and a reminder's thread kept. SQLite and
PostgreSQL. Invented people only."""

from __future__ import annotations

import email
from email import policy

import pytest
from sqlalchemy import select

from mailflow.clock import parse_instant
from mailflow.db.models import OutboxMessage
from mailflow.pipeline import sweep as sweep_module
from mailflow.pipeline.sender import drain
from tests.engine.conftest import Harness

REMIND_AT = "2026-12-29T09:00:00"   # Stage 1's reminder (deadline Wed 30 Dec; 25 and 28 Dec are holidays)


def _cases(h: Harness, n: int) -> list[str]:
    return [h.open_case(f"raiser{i}@gwh.nhs.example.org") for i in range(n)]


def test_reminders_are_drafts_until_the_sender_composes_and_keeps_them(h_any: Harness) -> None:
    refs = _cases(h_any, 3)
    fired = h_any.run_until(REMIND_AT)
    assert sorted(f.reference for _, r in fired for f in r.fired if f.action == "remind") == refs
    with h_any.app.db.transaction() as s:
        drafts = s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "reminder")).all()
        assert len(drafts) == 3 and all(r.stored_raw is None and r.draft for r in drafts)
        ack = s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "acknowledgement")).first()
        assert ack is not None and ack.stored_raw is None and ack.draft   # ingest queues drafts too
        for row in drafts:
            msg = email.message_from_bytes(row.raw, policy=policy.default)
            assert msg["Message-ID"] == row.message_id and msg["Subject"] == row.subject
            assert row.subject.startswith("[") and "Ada" not in row.subject
            assert msg["References"]   # the thread root, looked up for the batch
            body = msg.get_body(("plain",))
            assert body is not None and any(ref in body.get_content() for ref in refs)
    while drain(h_any.rt, h_any.clock.now()).sent:
        pass
    with h_any.app.db.transaction() as s:
        sent = s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "reminder")).all()
        assert all(r.state == "sent" and r.stored_raw is not None and r.draft is None for r in sent)
        kept = {r.message_id: r.stored_raw for r in sent}
    files = {}
    for path in (h_any.app.config.var_dir.parent / "outbox").glob("*.eml"):
        files[email.message_from_bytes(path.read_bytes())["Message-ID"]] = path.read_bytes()
    for message_id, raw in kept.items():
        # What went out is what was kept (the file transport puts its envelope lines first).
        assert files[message_id].replace(b"\r\n", b"\n").endswith(raw.replace(b"\r\n", b"\n"))


def test_a_failing_case_undoes_only_itself(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    first, bad, last = _cases(h, 3)
    real = sweep_module.notify

    def notify(s, rt, case, kind, now, **kw):  # type: ignore[no-untyped-def]
        if case.reference == bad:
            raise RuntimeError("boom")
        return real(s, rt, case, kind, now, **kw)

    monkeypatch.setattr(sweep_module, "notify", notify)
    h.clock.set(parse_instant(REMIND_AT))
    with pytest.raises(RuntimeError):
        h.sweep()
    # The batch was redone a case at a time: the case before the failing one is settled.
    assert [r.kind for r in h.outbox(first, "reminder")] == ["reminder"]
    assert h.outbox(bad, "reminder") == [] and h.outbox(last, "reminder") == []
    monkeypatch.setattr(sweep_module, "notify", real)
    again = h.sweep()
    assert sorted(f.reference for f in again.fired) == [bad, last]
    assert h.sweep().fired == []
