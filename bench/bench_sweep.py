"""Sweep: 1,000 due reminders among 10^5 and then 10^6 open cases, on PostgreSQL.

One database per size (`mailflow_bench_sweep_N`, created and dropped here), each seeded in bulk
(bench/seed.py: one real case cloned on the server) with N open Swindon cases, 1,000 of which have
their first reminder due at the sweep instant (all at the same 09:00, as a Board's reminders are)
and the rest deadlines spread over the next year. The sizes' runs are interleaved, so the ratio
compares them at the same moments of the machine.
Each timed run is one `sweep()` call, as the daemon makes it, that fires the 1,000 reminders: each
claims its ledger key and queues its notice in the outbox: recipients, subject and the rendered
text and HTML (Jinja), as a draft; composing the MIME message is left to the sender, when it
sends (the figure "composing those notices when sent" says what that costs); nothing is sent.
Between runs the database is put back (those deadlines pending again, the ledger keys, outbox
rows and events of the run removed, not timed). A warm-up sweep comes first at each size, once both are seeded.

Run: .venv/bin/python -m bench.bench_sweep [--cases 100000 1000000] [--due 1000] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import psycopg
from sqlalchemy import select, text

from bench.results import record
from bench.seed import BenchDatabase, first_reminder
from mailflow.app import App
from mailflow.db.models import OutboxMessage
from mailflow.pipeline.outbox import compose_draft
from mailflow.pipeline.sweep import sweep

SECTION = "Sweep: 1,000 due among N open cases (PostgreSQL)"


class Bench:
    def __init__(self, app: App, db: BenchDatabase, due: int) -> None:
        self.app, self.db, self.due = app, db, due
        self.now = first_reminder(db.template_deadlines(app))
        self.marks: dict[str, int] = {}

    def mark(self) -> None:
        """Remember where the tables end and which deadlines are due, to put them back later."""
        with self.app.db.engine.begin() as conn:
            for table in ("outbox", "events", "ledger", "deadlines"):
                self.marks[table] = conn.execute(text(f"SELECT coalesce(max(id), 0) FROM {table}")).scalar() or 0
            self.due_ids = [r[0] for r in conn.execute(text(
                "SELECT id FROM deadlines WHERE state = 'pending' AND due_at <= :now"), {"now": self.now})]
        if len(self.due_ids) != self.due:
            raise RuntimeError(f"{len(self.due_ids)} deadlines due, expected {self.due}")

    def reset(self) -> None:
        with self.app.db.engine.begin() as conn:
            for table in ("outbox", "events", "ledger", "deadlines"):
                conn.execute(text(f"DELETE FROM {table} WHERE id > :m"), {"m": self.marks[table]})
            conn.execute(text("UPDATE deadlines SET state = 'pending', done_at = NULL WHERE id = ANY(:ids)"),
                         {"ids": self.due_ids})
        # The put-back's dead rows vacuumed away (cheap: only the pages it touched), as autovacuum
        # keeps a production database: otherwise the next run at this size pays for visiting them
        # (a 10^6 run straight after its own put-back took 0.99-1.03 s against 0.62-0.78 s).
        with psycopg.connect(self.db.url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute("VACUUM outbox, events, ledger, deadlines")

    def compose_cost(self) -> float:
        """Sweep once more and time composing its drafts, as the sender will (then put back)."""
        sweep(self.app.runtime(), self.now)
        with self.app.db.engine.begin() as conn:
            drafts = [r[0] for r in conn.execute(select(OutboxMessage.draft).where(
                OutboxMessage.id > self.marks["outbox"], OutboxMessage.draft.is_not(None)))]
        if len(drafts) != self.due:
            raise RuntimeError(f"{len(drafts)} drafts, expected {self.due}")
        started = time.perf_counter()
        for draft in drafts:
            compose_draft(draft)
        seconds = time.perf_counter() - started
        self.reset()
        return seconds

    def run(self) -> float:
        rt = self.app.runtime()
        started = time.perf_counter()
        result = sweep(rt, self.now)
        seconds = time.perf_counter() - started
        with self.app.db.engine.begin() as conn:
            queued = conn.execute(text("SELECT count(*) FROM outbox WHERE id > :m AND kind = 'reminder'"),
                                  {"m": self.marks["outbox"]}).scalar()
        if len(result.fired) != self.due or queued != self.due:
            raise RuntimeError(f"fired {len(result.fired)}, queued {queued}; expected {self.due}")
        self.reset()
        return seconds


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--due", type=int, default=1_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="leave the databases behind")
    args = ap.parse_args(argv)
    sizes = sorted(set(args.cases))
    dbs = {n: BenchDatabase(name=f"mailflow_bench_sweep_{n}") for n in sizes}
    apps: dict[int, App] = {}
    try:
        benches: dict[int, Bench] = {}
        for n, db in dbs.items():
            t0 = time.perf_counter()
            apps[n] = db.create()
            # Clone g = 2..: the first `due` cases (with the template) keep its deadlines, due at
            # the sweep instant; the others' move 30 to 395 days on.
            db.grow(apps[n], n, shift_days=f"CASE WHEN g <= {args.due} THEN 0 ELSE 30 + g % 366 END")
            print(f"  seeded {n:,} cases in {time.perf_counter() - t0:.0f} s", flush=True)
            benches[n] = Bench(apps[n], db, args.due)
            benches[n].mark()
        for bench in benches.values():
            bench.run()   # warm-up, once every database is seeded
        # Interleaved, one size then the other, the order swapped each round: a slow moment of
        # this shared machine, or the work one run's put-back leaves the server, falls on both sizes.
        samples: dict[int, list[float]] = {n: [] for n in sizes}
        for r in range(args.runs):
            for n in sizes if r % 2 == 0 else sizes[::-1]:
                samples[n].append(benches[n].run())
        medians = {n: statistics.median(samples[n]) for n in sizes}
        for n, bench in benches.items():
            record(SECTION, f"{args.due:,} due among {n:,} open cases", medians[n], "s",
                   target="< 1 s" if n >= 1_000_000 else "", met=medians[n] < 1 if n >= 1_000_000 else None,
                   note=f"median of {args.runs} runs, interleaved with the other size's (order swapped each round), "
                        f"after a warm-up "
                        f"({', '.join(f'{s:.2f}' for s in samples[n])} s); each reminder's ledger key "
                        f"claimed and its notice rendered (text and HTML) and queued in the outbox as a "
                        f"draft; the MIME message is composed by the sender (next figure); nothing sent")
            compose = bench.compose_cost()
            record(SECTION, f"composing those {args.due:,} notices when sent (at {n:,})", compose, "s",
                   note="outbox.compose_draft over the drafts one sweep queued, as the sender does "
                        "before sending each; not part of the sweep's transaction")
        if len(medians) >= 2:
            small, large = sizes[0], sizes[-1]
            ratio = medians[large] / medians[small]
            record(SECTION, f"time({large:,}) / time({small:,})", ratio, ratio=ratio, target="<= 1.2",
                   met=ratio <= 1.2, note="ratio of the medians of interleaved runs, one database per size")
    finally:
        for app in apps.values():
            app.close()
        if not args.keep:
            for db in dbs.values():
                db.drop()


if __name__ == "__main__":
    main()
