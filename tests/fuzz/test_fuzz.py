"""Mutation fuzz of the parser corpus (issue 11, item 9): byte flips, duplicated and giant headers,
100k recipients, deep nesting, truncation, huge quoted replies, thousands of parts, damaged
boundaries, spliced messages and odd line endings.

Every message is parsed in a parse worker (the process ingest uses, with its hard time limit; two
side by side); every 10th is also ingested on SQLite through `ingest_one` (the whole pipeline: record, apply,
quarantine), which is the slow part. Asserted: no exception escapes parse or ingest, no parse over
the time limit and no parser process death, and each ingested message is recorded (processed, left
or quarantined) or settled as a duplicate of one recorded.

MAILFLOW_FUZZ_COUNT messages (2,000 by default; `make fuzz` runs 10,000), seeded by
MAILFLOW_FUZZ_SEED: a failure names the message (`#i corpus-file mutations`), which
`mutant(i, seed, corpus())` rebuilds exactly.
"""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import or_, select

from mailflow.app import App
from mailflow.clock import FixedClock, parse_instant
from mailflow.db.models import InboundMessage
from mailflow.pipeline.ingest import ingest_one
from mailflow.sources.base import InboundMail, Outcome
from parsers import ParseLimits
from parsers.worker import ParseWorker
from tests.conftest import make_config
from tests.fuzz.mutations import corpus, mutant

COUNT = int(os.environ.get("MAILFLOW_FUZZ_COUNT", "2000"))
SEED = int(os.environ.get("MAILFLOW_FUZZ_SEED", "20261203"))
INGEST_EVERY = int(os.environ.get("MAILFLOW_FUZZ_INGEST_EVERY", "10"))
PARSERS = 2                 # parse workers run side by side (this machine has 2 cores)
LIMITS = ParseLimits()      # the shipped limits, time limit included


@pytest.mark.slow
@pytest.mark.timeout(max(300, COUNT // 3))   # ~0.1 s a message on a busy 2-CPU machine: 3x that
def test_fuzzed_messages_never_escape_stall_or_vanish(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    messages = corpus()
    assert len(messages) >= 40
    started = time.monotonic()
    # Parse: every message, in two parse workers (one per core), each timed.
    results: dict[int, tuple[float, str, str | None]] = {}    # i -> (seconds, label, rejected)
    message_ids: dict[int, str | None] = {}
    escapes: list[str] = []

    def parse_share(share: int) -> None:
        worker = ParseWorker()
        try:
            for i in range(share, COUNT, PARSERS):
                label, raw = mutant(i, SEED, messages)
                t0 = time.perf_counter()
                try:
                    parsed = worker.parse(raw, LIMITS)
                except Exception as exc:  # noqa: BLE001 - the figure being measured
                    escapes.append(f"{label}: parse raised {type(exc).__name__}")
                    continue
                results[i] = (time.perf_counter() - t0, label, parsed.rejected)
                message_ids[i] = parsed.message_id
        finally:
            worker.close()

    with ThreadPoolExecutor(PARSERS) as pool:
        list(pool.map(parse_share, range(PARSERS)))
    stalled = [f"{label}: {why}" for _, label, why in results.values()
               if why and ("took longer" in why or "process died" in why)]

    # Ingest: every INGEST_EVERY-th message through the whole pipeline on SQLite.
    app = App.open(make_config(tmp_path, f"sqlite:///{tmp_path / 'fuzz.db'}"),
                   FixedClock(parse_instant("2026-12-21T10:00:00")))
    unrecorded: list[str] = []
    outcomes: dict[str, int] = {}
    ingested = 0
    try:
        rt = app.runtime()
        for i in range(0, COUNT, INGEST_EVERY):
            label, raw = mutant(i, SEED, messages)
            source_id = f"fuzz:{i}"
            try:
                outcome, _ = ingest_one(rt, InboundMail(raw=raw, source_id=source_id))
            except Exception as exc:  # noqa: BLE001
                escapes.append(f"{label}: ingest raised {type(exc).__name__}: {str(exc)[:200]}")
                continue
            ingested += 1
            outcomes[outcome.value] = outcomes.get(outcome.value, 0) + 1
            if not _recorded(app, source_id, raw, message_ids.get(i)):
                unrecorded.append(label)
    finally:
        app.close()

    elapsed = time.monotonic() - started
    times = sorted(t for t, _, _ in results.values())
    slowest_time, slowest, _ = max(results.values()) if results else (0.0, "", None)
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))] if times else 0.0
    rejected = sum(1 for _, _, why in results.values() if why)
    with capsys.disabled():
        print(f"\nfuzz: {COUNT} messages (seed {SEED}) in {elapsed:.0f} s; {rejected} rejected by the parser "
              f"(quarantined); {ingested} ingested on SQLite: {outcomes}; escapes {len(escapes)}, over the time "
              f"limit {len(stalled)}, unrecorded {len(unrecorded)}; parse p50 {times[len(times) // 2] * 1000:.0f} ms, "
              f"p99 {p99 * 1000:.0f} ms, slowest {slowest_time:.2f} s ({slowest})")
        for line in (escapes + stalled + unrecorded)[:20]:
            print("  ", line)
    assert escapes == []
    assert stalled == []
    assert len(results) == COUNT
    assert unrecorded == []
    assert sum(outcomes.values()) == ingested and set(outcomes) <= {o.value for o in Outcome}


def _recorded(app: App, source_id: str, raw: bytes, message_id: str | None) -> bool:
    """Recorded under its own source id, or (a duplicate) under its Message-ID or bytes."""
    sha256 = hashlib.sha256(raw).hexdigest()
    with app.db.transaction() as s:
        conditions = [InboundMessage.source_id == source_id, InboundMessage.sha256 == sha256]
        if message_id:
            conditions.append(InboundMessage.message_id == message_id)
        return s.scalar(select(InboundMessage.id).where(or_(*conditions)).limit(1)) is not None
