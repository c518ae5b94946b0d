"""Four worker processes sweep the same due deadlines on PostgreSQL: every notice goes out
exactly once (outbox rows per case and kind, ledger rows), whoever wins each row."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from mailflow.db.models import Case, Deadline, LedgerEntry, OutboxMessage
from tests.conftest import write_config
from tests.engine.conftest import Harness, open_harness

CASES = 30
WORKERS = 4
AT = "2027-01-08T10:00:00"   # every case: Stage 1 ran out 30 Dec, Stage 2 on 7 Jan: now at Stage 3 (a catch-up)


def _mailflow() -> list[str]:
    exe = Path(sys.executable).with_name("mailflow")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "mailflow"]


@pytest.mark.postgres
def test_four_workers_fire_each_notice_exactly_once(tmp_path, pg_url):
    h: Harness = open_harness(tmp_path, pg_url)
    try:
        la, police = "Swindon Borough Council - Adult Social Care", "Wiltshire Police"
        refs = [h.open_case(f"nurse{i}.example@gwh.nhs.example.org", other_agency=la if i % 2 else police)
                for i in range(CASES)]
        h.outbox()  # warm
        before = Counter((r.case_id, r.kind) for r in h.outbox())
    finally:
        h.app.close()
    config = write_config(tmp_path, pg_url)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    procs = [subprocess.Popen([*_mailflow(), "--config", str(config), "sweep", "--at", AT],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(WORKERS)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    fired = [int(m.group(1)) for out, _ in outs for m in re.finditer(r"(\d+) deadline\(s\) fired", out)]
    assert len(fired) == WORKERS
    # Two escalations per case (1 -> 2, 2 -> 3) fired in all, however the workers shared them.
    print("fired per worker:", fired)
    assert sum(fired) == 2 * CASES, fired

    h = open_harness(tmp_path, pg_url)
    try:
        with h.app.db.transaction() as s:
            cases = {c.id: c for c in s.scalars(select(Case))}
            assert {c.stage for c in cases.values()} == {3}
            rows = s.scalars(select(OutboxMessage)).all()
            new = Counter((r.case_id, r.kind, re.search(r"Stage (\d)", r.subject).group(1)) for r in rows) - \
                Counter({(cid, kind, "1"): n for (cid, kind), n in before.items()})
            ledger = s.scalars(select(LedgerEntry)).all()
            pending = s.scalars(select(Deadline).where(Deadline.state == "pending")).all()
        # Both deadlines passed while nothing ran: one catch-up notice to the people, one to the
        # business team, per case, instead of each stage's escalation and copy.
        for cid, case in cases.items():
            la = case.fields["others_involved"][0]["agency"].startswith("Swindon Borough")
            assert new[(cid, "catch_up", "3")] == 2
            catch_up = [r for r in rows if r.case_id == cid and r.kind == "catch_up"]
            people = {a for r in catch_up for a in r.recipients}
            assert sum(len(r.recipients) for r in catch_up) == len(people)   # nobody twice
            assert ("owen.fictional@asc.swindon.example.org" in people) == la   # Director of Social Work
        assert set(k for _, k, _ in new) == {"catch_up"}
        assert len(ledger) == 2 * CASES
        wanted = Counter({(cid, st): 1 for cid in cases for st in (1, 2)})
        assert Counter((e.case_id, e.stage) for e in ledger) == wanted
        # Each case waits on Stage 3 (its reminder and deadline), nothing else.
        assert Counter(d.case_id for d in pending) == Counter({cid: 2 for cid in cases})
        assert len(refs) == CASES
    finally:
        h.app.close()


@pytest.mark.postgres
def test_a_worker_skips_a_case_another_worker_holds(tmp_path, pg_url):
    """While one worker holds a case (mid-action), another neither waits for it nor touches its
    deadlines: it moves on, and the case is swept once the first lets go."""
    import threading

    from mailflow.clock import parse_instant

    h = open_harness(tmp_path, pg_url)
    try:
        held, other = h.open_case(), h.open_case("sam.example@gwh.nhs.example.org")
        holding, release = threading.Event(), threading.Event()

        def hold() -> None:
            with h.app.db.transaction() as s:
                s.execute(select(Case.id).where(Case.reference == held).with_for_update()).all()
                holding.set()
                release.wait(30)

        holder = threading.Thread(target=hold)
        holder.start()
        assert holding.wait(10)
        result: list = []
        sweeper = threading.Thread(target=lambda: result.append(h.sweep(parse_instant("2026-12-31T10:00:00"))))
        sweeper.start()
        sweeper.join(15)
        blocked = sweeper.is_alive()
        release.set()
        holder.join(10)
        sweeper.join(30)
        assert not blocked, "the sweeper waited for a case another worker held"
        assert [(f.reference, f.action) for f in result[0].fired] == [(other, "escalate")]
        assert h.case(held)["stage"] == 1
        again = h.sweep(parse_instant("2026-12-31T10:00:00"))
        assert [(f.reference, f.action) for f in again.fired] == [(held, "escalate")]
    finally:
        h.app.close()


@pytest.mark.postgres
def test_a_reply_waits_for_a_sweeper_moving_the_same_case(tmp_path, pg_url):
    """A sweeper escalates the case (Stage 1 -> 2) while a #resolved reply about it is ingested:
    the reply acts on the case as the sweeper left it (resolved at Stage 2, confirmation due at
    Stage 2), not on the Stage 1 it read before."""
    import threading

    from mailflow.clock import parse_instant
    from mailflow.pipeline import cases as case_actions
    from tests.engine.conftest import ASC_MANAGER

    h = open_harness(tmp_path, pg_url)
    try:
        ref = h.open_case()
        thread_id = h.last_sent(ref, ASC_MANAGER).message_id
        at = parse_instant("2026-12-31T10:00:00")
        h.clock.set(at)
        locked, release = threading.Event(), threading.Event()

        def sweeper() -> None:
            with h.app.db.transaction() as s:
                case = s.scalars(select(Case).where(Case.reference == ref).with_for_update()).one()
                case_actions.escalate(s, h.rt, case, case_actions.Actor("deadline"), at, "time ran out",
                                      clock_start=parse_instant("2026-12-30T17:00:00"), automatic=True)
                s.flush()
                locked.set()
                release.wait(30)

        from tests.conftest import make_message

        t1 = threading.Thread(target=sweeper)
        t1.start()
        assert locked.wait(10)
        got: list = []
        raw = make_message(ASC_MANAGER, f"Re: [{ref}] Stage 1", "#resolved agreed", in_reply_to=thread_id)
        t2 = threading.Thread(target=lambda: got.append(h.ingest(raw)))
        t2.start()
        import psycopg

        from tests.conftest import PG_ADMIN_URL

        # Wait until the reply is queued behind the sweeper's lock (no sleeping: poll the server).
        with psycopg.connect(PG_ADMIN_URL.replace("+psycopg", ""), autocommit=True) as conn:
            for _ in range(20000):
                row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'").fetchone()
                if row and row[0] or not t2.is_alive():
                    break
        release.set()
        t1.join(30)
        t2.join(30)
        assert got and got[0][1] is None, got
        c = h.case(ref)
        assert (c["state"], c["stage"]) == ("resolved", 2)
        assert {d[0] for d in h.pending(ref)} == {2}
        assert [d[2] for d in h.pending(ref)] == ["remind", "chase"]
        assert "Stage 2" in h.outbox(ref, "confirmation_request")[0].subject
    finally:
        h.app.close()


FORMS = 100


@pytest.mark.postgres
@pytest.mark.parametrize("places", ["same place", "two folders"])
def test_two_ingests_of_the_same_forms_at_once_open_each_case_once(tmp_path, pg_url, places):
    """Two workers record the same 100 forms at the same moment (read from the same place in the
    mailbox, or from two folders holding copies): the unique keys let one of them record each
    message, the other settles it as already recorded. 100 cases, not 200."""
    import threading

    from mailflow.pipeline.ingest import ingest_one
    from mailflow.sources.base import InboundMail
    from tests.conftest import make_form

    forms = [make_form(f"nurse{i}.example@gwh.nhs.example.org") for i in range(FORMS)]
    for n in range(2):
        (tmp_path / str(n)).mkdir()
    harnesses = [open_harness(tmp_path / str(n), pg_url) for n in range(2)]
    start = threading.Barrier(2)
    outcomes: list[list[str]] = [[], []]
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        start.wait()
        try:
            for i, raw in enumerate(forms):
                source_id = f"imap:INBOX:1:{i}" if places == "same place" else f"folder{n}:{i}"
                outcomes[n].append(ingest_one(harnesses[n].rt, InboundMail(raw=raw, source_id=source_id))[0].value)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert not errors, errors
        assert outcomes[0] == outcomes[1] == ["processed"] * FORMS
        with harnesses[0].app.db.transaction() as s:
            from mailflow.db.models import InboundMessage

            assert len(s.scalars(select(Case)).all()) == FORMS
            assert len(s.scalars(select(InboundMessage)).all()) == FORMS
            acks = s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "acknowledgement")).all()
            assert len(acks) == FORMS
    finally:
        for h in harnesses:
            h.app.close()


@pytest.mark.postgres
def test_four_run_workers_started_together_share_the_mailbox(tmp_path, pg_url):
    """Four `mailflow run --once` on the same mailbox and database: none fails; a message another
    worker recorded first is one log line (no SQL, no parameters, no message text)."""
    from mailflow.sources.maildir import MaildirSource
    from tests.conftest import make_form

    n_forms = 40
    config = write_config(tmp_path, pg_url)
    box = MaildirSource(tmp_path / "mail")
    for i in range(n_forms):
        box.deliver(make_form(f"nurse{i}.example@gwh.nhs.example.org"), f"{i:03d}.eml")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    # Migrate first, as an installation does (tests/ops covers workers creating the schema together).
    subprocess.run([*_mailflow(), "--config", str(config), "db", "upgrade"], check=True, capture_output=True, env=env)
    procs = [subprocess.Popen([*_mailflow(), "--config", str(config), "run", "--once", "--at", "2026-12-21T10:05"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(WORKERS)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, (out + err)[-3000:]
        text = out + err
        for leak in ("[parameters", "INSERT", "SELECT", "Ada Testperson", "03/04/1951", "Traceback"):
            assert leak not in text, (leak, text[-3000:])
        conflicts = re.findall(r"(maildir:\S+) was recorded meanwhile by another worker", text)
        assert max(Counter(conflicts).values(), default=0) <= 1, conflicts
        assert "IntegrityError" not in text, text[-3000:]
    assert not list((tmp_path / "mail" / "new").iterdir())
    h = open_harness(tmp_path, pg_url)
    try:
        with h.app.db.transaction() as s:
            assert len(s.scalars(select(Case)).all()) == n_forms
            acks = s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "acknowledgement")).all()
            assert len(acks) == n_forms
    finally:
        h.app.close()
