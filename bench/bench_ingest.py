"""Ingest throughput against the bare stdlib parse of the same bytes, by message kind; ingest as the
inbound table grows; peak memory of a 10,000-message mbox.

- Rate by kind: each run ingests a fresh batch of every kind (unique Message-IDs, so nothing is a
  duplicate) through `ingest_stream`, as the daemon's `ingest_source` does (parse in the worker
  process, record, apply, queue the mail it causes, commit; the worker parses the next message
  while the current one's transaction runs) on SQLite, then times `email.message_from_bytes(raw, policy.default)` +
  `get_body()` over the same bytes. Kinds and runs are interleaved; the median ratio is reported.
  Forms are the corpus's own (tests/fixtures/mail); replies are the corpus's replies re-addressed
  to a real case of the database (threaded on its acknowledgement, from its raiser), so they act.
- Growth: the same batch of text forms into a database seeded (bulk inserts) with 100 and with
  10,000 inbound rows, interleaved; ratio of the medians.
- Memory: `mailflow ingest` of a 10,000-message mbox in a subprocess; its peak RSS (getrusage).

Run: .venv/bin/python -m bench.bench_ingest   (about 90 s)
"""

from __future__ import annotations

import argparse
import email
import hashlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from email import policy
from pathlib import Path

from sqlalchemy import insert, select

from bench.results import record
from mailflow.app import App
from mailflow.clock import FixedClock, parse_instant
from mailflow.config import embedded_default
from mailflow.db.models import Case, InboundMessage, OutboxMessage
from mailflow.pipeline.ingest import ingest_one, ingest_stream
from mailflow.sources.base import InboundMail, Outcome
from parsers.worker import parse_in_worker

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "fixtures" / "mail"
START = parse_instant("2026-12-21T10:00")
KINDS = {
    "text form": ["form_gmail_text_generic", "form_apple_text_appendix2", "form_cp1252_qp",
                  "form_owa_text_generic"],
    "HTML form": ["form_outlook_html_table_swindon", "form_owa_html_strike_swindon",
                  "form_gmail_html_base64_checkbox"],
    "reply": ["reply_apple_note", "reply_owa_extend", "reply_gmail_urgent", "reply_outlook_resolved"],
    "docx form": ["form_outlook_docx_swindon", "form_gmail_docx_paragraphs_generic",
                  "form_apple_docx_appendix2"],
    "PDF form": ["form_outlook_pdf_swindon", "form_apple_pdf_appendix2", "form_outlook_table_pdf_swindon",
                 "form_gmail_pdf_generic"],
}
FAST_KINDS = ("text form", "HTML form", "reply")
BATCH = {"text form": 24, "HTML form": 24, "reply": 24, "docx form": 12, "PDF form": 12}
RUNS = 5
RAISER = "jo.example@gwh.nhs.example.org"
ADDRESS = "safeguarding@ssp.example.org"
MBOX_MESSAGES = int(os.environ.get("MAILFLOW_BENCH_MBOX_MESSAGES", "10000"))


# --- messages -------------------------------------------------------------------------------

def set_headers(raw: bytes, values: dict[str, str]) -> bytes:
    """`raw` with each named header (continuation lines included) replaced by the given value."""
    crlf, lf = raw.find(b"\r\n\r\n"), raw.find(b"\n\n")
    head, sep, body = raw.partition(b"\r\n\r\n" if crlf != -1 and (lf == -1 or crlf < lf) else b"\n\n")
    eol = b"\r\n" if sep == b"\r\n\r\n" else b"\n"
    names = {n.lower().encode() for n in values}
    kept: list[bytes] = []
    skipping = False
    for line in head.split(eol):
        if line[:1] in (b" ", b"\t"):
            if not skipping:
                kept.append(line)
            continue
        skipping = line.split(b":", 1)[0].strip().lower() in names
        if not skipping:
            kept.append(line)
    new = [f"{k}: {v}".encode() for k, v in values.items()]
    return eol.join(new + kept) + sep + body


def _corpus(name: str) -> bytes:
    return (CORPUS / f"{name}.eml").read_bytes()


class Numbering:
    def __init__(self) -> None:
        self.n = 0

    def message_id(self) -> str:
        self.n += 1
        return f"<bench.{self.n}.{time.monotonic_ns()}@bench.example>"


def forms_batch(kind: str, count: int, ids: Numbering) -> list[bytes]:
    names = KINDS[kind]
    return [set_headers(_corpus(names[i % len(names)]), {"Message-ID": ids.message_id()}) for i in range(count)]


def replies_batch(app: App, clock: FixedClock, count: int, ids: Numbering) -> list[bytes]:
    """Open `count` cases (not timed) and write one corpus reply to each, threaded on its
    acknowledgement to the raiser."""
    rt = app.runtime()
    out: list[bytes] = []
    form = _corpus("form_gmail_text_generic")
    for i in range(count):
        raw = set_headers(form, {"Message-ID": ids.message_id(), "From": RAISER})
        outcome, reason = _ingest(rt, clock, raw)
        assert outcome == Outcome.PROCESSED, reason
        with app.db.transaction() as s:
            case_id, ref = s.execute(select(Case.id, Case.reference).order_by(Case.id.desc()).limit(1)).one()
            ack = s.scalars(select(OutboxMessage.message_id).where(OutboxMessage.case_id == case_id)
                            .order_by(OutboxMessage.id)).first()
        body = _corpus(KINDS["reply"][i % len(KINDS["reply"])])
        out.append(set_headers(body, {
            "From": RAISER, "To": ADDRESS, "Subject": f"RE: [{ref}] Escalation opened",
            "Message-ID": ids.message_id(), "In-Reply-To": ack or "", "References": ack or "",
        }))
    return out


_seq = [0]


def _ingest(rt, clock: FixedClock, raw: bytes) -> tuple[Outcome, str | None]:
    # Four minutes apart: one sender stays under the hourly flood limit, as real senders do.
    clock.advance(timedelta(minutes=4))
    _seq[0] += 1
    return ingest_one(rt, InboundMail(raw=raw, source_id=f"bench:{_seq[0]}"))


def _ingest_batch(rt, clock: FixedClock, batch: list[bytes]) -> list[tuple[Outcome, str | None]]:
    """The batch as a mailbox pass takes it (ingest_stream: one message read ahead)."""
    def mails():
        for raw in batch:
            clock.advance(timedelta(minutes=4))
            _seq[0] += 1
            yield InboundMail(raw=raw, source_id=f"bench:{_seq[0]}")
    return [(done.outcome, done.reason) if done else (Outcome.QUARANTINED, "not recorded")
            for _, done in ingest_stream(rt, mails())]


# --- timing -------------------------------------------------------------------------------

def bare_parse(raw: bytes) -> None:
    email.message_from_bytes(raw, policy=policy.default).get_body()


def timed(fn: Callable[[bytes], object], batch: list[bytes]) -> float:
    started = time.perf_counter()
    for raw in batch:
        fn(raw)
    return time.perf_counter() - started


def open_app(tmp: Path) -> tuple[App, FixedClock]:
    clock = FixedClock(START)
    return App.open(embedded_default(tmp), clock), clock


def seed_inbound(app: App, rows: int) -> None:
    """`rows` earlier inbound messages from many senders over the past year, in bulk."""
    past = START - timedelta(days=365)
    values = []
    for i in range(rows):
        key = hashlib.sha256(f"seed-{i}".encode()).hexdigest()
        values.append({
            "partnership": "SSP", "source_id": f"seed:{i}", "folder": "INBOX", "message_id": f"<seed.{i}@x.example>",
            "message_id_key": hashlib.sha256(f"<seed.{i}@x.example>".encode()).hexdigest(), "sha256": key,
            "sender": f"person{i % 500}@agency{i % 37}.example.org", "raw": b"seeded", "size": 6,
            "received_at": past + timedelta(minutes=50 * i % (365 * 24 * 60)),
            "arrived_at": past + timedelta(minutes=50 * i % (365 * 24 * 60)), "kind": "reply",
            "outcome": "processed",
        })
    with app.db.transaction() as s:
        for start in range(0, rows, 2000):
            s.execute(insert(InboundMessage), values[start:start + 2000])


def rate_by_kind(tmp: Path, runs: int) -> None:
    app, clock = open_app(tmp / "kinds")
    rt = app.runtime()
    limits = app.config.limits
    ids = Numbering()
    ratios: dict[str, list[float]] = {k: [] for k in KINDS}
    ingest_rates: dict[str, list[float]] = {k: [] for k in KINDS}
    bare_rates: dict[str, list[float]] = {k: [] for k in KINDS}
    parse_rates: dict[str, list[float]] = {k: [] for k in KINDS}
    try:
        for raw in forms_batch("PDF form", 4, ids) + forms_batch("docx form", 3, ids):  # warm up
            _ingest(rt, clock, raw)
        for _ in range(runs):
            for kind in KINDS:
                n = BATCH[kind]
                batch = replies_batch(app, clock, n, ids) if kind == "reply" else forms_batch(kind, n, ids)
                started = time.perf_counter()
                outcomes = _ingest_batch(rt, clock, batch)
                ours = time.perf_counter() - started
                bad = [o for o in outcomes if o != (Outcome.PROCESSED, None)]
                assert not bad, f"{kind}: {bad[:3]}"
                bare = statistics.median(timed(bare_parse, batch) for _ in range(3))
                # The parse alone, in the worker process ingest uses (one message at a time): with
                # one parser process, ingest can go no faster than this whatever recording costs.
                parse_rates[kind].append(n / timed(lambda raw: parse_in_worker(raw, limits), batch))
                ingest_rates[kind].append(n / ours)
                bare_rates[kind].append(n / bare)
                ratios[kind].append(bare / ours)
    finally:
        app.close()
    for kind in KINDS:
        ratio = statistics.median(ratios[kind])
        rate = statistics.median(ingest_rates[kind])
        bare_rate = statistics.median(bare_rates[kind])
        parse_rate = statistics.median(parse_rates[kind])
        note = (f"median of {runs} interleaved runs of {BATCH[kind]} messages (ingest_stream, next message "
                f"parsed while one is recorded); bare parse "
                f"{bare_rate:.0f} msg/s (message_from_bytes + get_body); mailflow's parse alone in its "
                f"worker process {parse_rate:.0f} msg/s ({parse_rate / bare_rate:.2f}x bare: ingest's "
                f"ceiling with one parser process); SQLite")
        if kind in FAST_KINDS:
            record("Ingest", f"{kind}: ingest vs bare parse", rate, "msg/s", ratio=ratio,
                   target=">= 0.5x bare", met=ratio >= 0.5, note=note)
        elif kind == "PDF form":
            record("Ingest", f"{kind}: ingest vs bare parse", rate, "msg/s", ratio=ratio,
                   target="> 25 msg/s", met=rate > 25, note=note)
        else:
            record("Ingest", f"{kind}: ingest vs bare parse", rate, "msg/s", ratio=ratio,
                   target="documented", note=note)


def growth(tmp: Path, runs: int) -> None:
    apps = {}
    for rows in (100, 10_000):
        app, clock = open_app(tmp / f"rows{rows}")
        seed_inbound(app, rows)
        apps[rows] = (app, clock)
    ids = Numbering()
    times: dict[int, list[float]] = {100: [], 10_000: []}
    try:
        for app, clock in apps.values():   # warm up each
            for raw in forms_batch("text form", 4, ids):
                _ingest(app.runtime(), clock, raw)
        for _ in range(runs):
            for rows, (app, clock) in apps.items():
                batch = forms_batch("text form", 24, ids) + [
                    set_headers(b, {"Message-ID": ids.message_id()}) for b in
                    (_corpus(KINDS["reply"][i % 4]) for i in range(8))]
                rt = app.runtime()
                started = time.perf_counter()
                outcomes = [_ingest(rt, clock, raw)[0] for raw in batch]
                times[rows].append(time.perf_counter() - started)
                assert outcomes[:24] == [Outcome.PROCESSED] * 24, outcomes
    finally:
        for app, _ in apps.values():
            app.close()
    small, large = statistics.median(times[100]), statistics.median(times[10_000])
    record("Ingest", "ingest at 10,000 vs 100 inbound rows", large / 32 * 1000, "ms/msg", ratio=large / small,
           target="<= 1.2", met=large / small <= 1.2,
           note=f"32 messages (24 text forms, 8 replies about no case) per run, median of {runs} interleaved "
                f"runs; {small / 32 * 1000:.1f} ms/msg at 100 rows; SQLite")


def write_mbox(path: Path, count: int) -> None:
    """A mailbox of `count` messages: mostly mail that is not for mailflow (a list's newsletter,
    personal mail), one form in 50."""
    bodies = [_corpus("newsletter_list"), _corpus("unrelated_personal")]
    form = _corpus("form_gmail_text_generic")
    with path.open("wb") as out:
        for i in range(count):
            raw = form if i % 50 == 0 else bodies[i % 2]
            raw = set_headers(raw, {"Message-ID": f"<mbox.{i}@bench.example>"}).replace(b"\r\n", b"\n")
            raw = re.sub(rb"(?m)^(>*From )", rb">\1", raw)
            out.write(b"From bench@example.org Mon Dec 21 10:00:00 2026\n" + raw.rstrip(b"\n") + b"\n\n")


_RSS_CHILD = """
import resource, sys, time
from mailflow.cli.main import main
started = time.perf_counter()
code = main(["--config", sys.argv[1], "ingest", sys.argv[2]])
print("ELAPSED", time.perf_counter() - started)
print("MAXRSS", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(code)
"""


def mbox_memory(tmp: Path) -> None:
    base = tmp / "mbox"
    base.mkdir()
    mbox = base / "backlog.mbox"
    write_mbox(mbox, MBOX_MESSAGES)
    config = base / "mailflow.toml"
    config.write_text(
        '[mailflow]\ndatabase_url = "sqlite:///' + str(base / "mailflow.db") + '"\nvar_dir = "' + str(base / "var")
        + '"\n\n[[partnership]]\nname = "Bench"\nprefix = "SSP"\npolicy = "swindon"\n'
        'address = "safeguarding@ssp.example.org"\nbusiness_team = ["business.team@ssp.example.org"]\n'
        'mailbox = { kind = "maildir", path = "' + str(base / "mail") + '" }\n'
        'transport = { kind = "file", path = "' + str(base / "outbox") + '" }\n')
    try:
        proc = subprocess.run([sys.executable, "-c", _RSS_CHILD, str(config), str(mbox)], capture_output=True,
                              text=True, cwd=base, timeout=1800)
    except subprocess.TimeoutExpired:
        record("Ingest", f"peak RSS, mbox of {MBOX_MESSAGES:,} messages", "timed out", note="over 30 minutes")
        return
    if proc.returncode != 0:
        record("Ingest", f"peak RSS, mbox of {MBOX_MESSAGES:,} messages", "failed", note=proc.stderr[-300:])
        return
    figures = dict(line.split() for line in proc.stdout.splitlines() if line.startswith(("ELAPSED", "MAXRSS")))
    rss_mb = int(figures["MAXRSS"]) / 1024
    elapsed = float(figures["ELAPSED"])
    record("Ingest", f"peak RSS, mbox of {MBOX_MESSAGES:,} messages", rss_mb, "MB",
           note=f"`mailflow ingest` in a subprocess (getrusage of the CLI's process; the parser worker "
                f"is a separate process), {mbox.stat().st_size / 2**20:.0f} MB mbox, 1 in 50 a form, "
                f"{MBOX_MESSAGES / elapsed:.0f} msg/s, SQLite")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", metavar="kinds|growth|mbox", help="which measurements (default: all)")
    parser.add_argument("--runs", type=int, default=RUNS)
    args = parser.parse_args()
    parts = args.parts or ["kinds", "growth", "mbox"]
    if not set(parts) <= {"kinds", "growth", "mbox"}:
        parser.error(f"unknown part in {parts}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if "kinds" in parts:
            rate_by_kind(tmp, args.runs)
        if "growth" in parts:
            growth(tmp, args.runs)
        if "mbox" in parts:
            mbox_memory(tmp)


if __name__ == "__main__":
    main()
