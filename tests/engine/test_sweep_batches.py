"""The sweep in batches: notices queued as drafts (rendered, composed by the sender, the bytes
then kept), a batch that fails redone a case at a time, and a reminder's thread kept. SQLite and
PostgreSQL. Invented people only."""

from __future__ import annotations

import email
from email import policy

import pytest
from sqlalchemy import select

from mailflow.clock import parse_instant
from mailflow.db.bounds import ELLIPSIS
from mailflow.db.models import Case, LedgerEntry, OutboxMessage
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


def test_a_batch_writes_its_rows_in_the_order_queued_fitted_and_with_their_defaults(h_any: Harness) -> None:
    """The batch's ledger keys and outbox rows go in by one executemany per table (`insert_queued`):
    still in the order they were queued (the first is a case's thread root), cut to their columns
    as a flush cuts them, and with the model's defaults where a row leaves a column unset."""
    ref = h_any.open_case()
    now = h_any.clock.now()
    with h_any.app.db.transaction() as s:
        case_id = s.scalars(select(Case.id).where(Case.reference == ref)).one()
        for i in range(3):
            s.add(OutboxMessage(partnership="SSP", case_id=case_id, kind="reminder", message_id=f"<bulk-{i}@test>",
                                envelope_from="safeguarding@ssp.example.org", recipients=["a@gwh.nhs.example.org"],
                                subject="S" * 2000 if i == 1 else f"subject {i}", draft={"n": i},
                                next_attempt_at=now, created_at=now))
            s.add(LedgerEntry(case_id=case_id, stage=9, step=f"step{i}", kind="remind", due_at=now, fired_at=now))
        sweep_module.insert_queued(s)
        assert not s.new
    with h_any.app.db.transaction() as s:
        rows = s.scalars(select(OutboxMessage).where(OutboxMessage.message_id.like("<bulk-%"))
                         .order_by(OutboxMessage.id)).all()
        assert [r.message_id for r in rows] == [f"<bulk-{i}@test>" for i in range(3)]
        assert [r.draft for r in rows] == [{"n": 0}, {"n": 1}, {"n": 2}]
        assert len(rows[1].subject) == 998 and rows[1].subject.endswith(ELLIPSIS)
        assert all(r.state == "pending" and r.attempts == 0 and r.stored_raw is None for r in rows)
        steps = s.scalars(select(LedgerEntry.step).where(LedgerEntry.stage == 9).order_by(LedgerEntry.id)).all()
        assert steps == ["step0", "step1", "step2"]
