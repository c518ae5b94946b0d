"""The lookups ingest makes for every message follow the message, not the table: the duplicate check
and the sender rate limit are index probes (no scan of the partnership's rows), and the duplicate
check still finds the earliest row matching any of the three keys."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert

from mailflow.app import App
from mailflow.clock import FixedClock, parse_instant
from mailflow.db.models import InboundMessage
from mailflow.db.store import find_duplicate, message_id_key
from mailflow.pipeline.authorise import over_rate_limit
from tests.conftest import make_config

NOW = parse_instant("2026-12-21T10:00")


def _row(i: int, **over: Any) -> dict[str, Any]:
    mid = f"<m{i}@agency.example.org>"
    return {"partnership": "SSP", "source_id": f"file:{i}", "message_id": mid, "message_id_key": message_id_key(mid),
            "sha256": hashlib.sha256(str(i).encode()).hexdigest(), "sender": f"p{i % 7}@agency.example.org",
            "raw": b"x", "size": 1, "received_at": NOW - timedelta(minutes=i), "arrived_at": NOW - timedelta(minutes=i),
            "kind": "reply", "outcome": "processed",
            **over}


@pytest.fixture
def app(tmp_path: Path) -> Any:
    application = App.open(make_config(tmp_path, f"sqlite:///{tmp_path / 'lookups.db'}"), FixedClock(NOW))
    with application.db.transaction() as s:
        s.execute(insert(InboundMessage), [_row(i) for i in range(300)])
    yield application
    application.close()


def test_the_duplicate_check_finds_the_earliest_row_matching_any_key(app: App) -> None:
    with app.db.transaction() as s:
        by_bytes = find_duplicate(s, "SSP", "file:new", "<new@x.example>", hashlib.sha256(b"250").hexdigest())
        by_place = find_duplicate(s, "SSP", "file:7", None, "0" * 64)
        by_id = find_duplicate(s, "SSP", "file:new", "<m42@agency.example.org>", "0" * 64)
        earliest = find_duplicate(s, "SSP", "file:200", "<m42@agency.example.org>", hashlib.sha256(b"9").hexdigest())
        other_partnership = find_duplicate(s, "ABC", "file:7", "<m7@agency.example.org>", "0" * 64)
        nothing = find_duplicate(s, "SSP", "file:new", "<new@x.example>", "0" * 64)
    assert by_bytes is not None and by_bytes.source_id == "file:250"
    assert by_place is not None and by_place.source_id == "file:7"
    assert by_id is not None and by_id.source_id == "file:42"
    assert earliest is not None and earliest.source_id == "file:9"
    assert other_partnership is None and nothing is None


def _plans(app: App, run: Any) -> list[str]:
    statements: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        statements.append((statement, parameters))
    event.listen(app.db.engine, "before_cursor_execute", seen)
    try:
        with app.db.transaction() as s:
            run(s)
    finally:
        event.remove(app.db.engine, "before_cursor_execute", seen)
    with app.db.transaction() as s:
        return [" / ".join(str(row[-1]) for row in s.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + st, p))
                for st, p in statements if st.lstrip().upper().startswith("SELECT")]


def test_duplicate_check_and_rate_limit_probe_indexes_and_never_scan_the_table(app: App) -> None:
    rt = app.runtime()
    plans = _plans(app, lambda s: (find_duplicate(s, "SSP", "file:x", "<x@y.example>", "1" * 64),
                                   over_rate_limit(s, rt, "P3@Agency.example.org", NOW)))
    assert len(plans) == 2
    for plan in plans:
        assert "SCAN inbound_messages" not in plan, plan
    assert plans[0].count("USING COVERING INDEX") == 3
    assert "ix_inbound_sender_arrival" in plans[1]


def test_the_rate_limit_counts_a_sender_whatever_the_case_of_the_address(app: App) -> None:
    rt = app.runtime()
    limit = app.config.daemon.sender_messages_per_hour
    with app.db.transaction() as s:
        s.execute(insert(InboundMessage), [
            _row(1000 + i, sender="flood@agency.example.org", arrived_at=NOW - timedelta(minutes=i))
            for i in range(limit + 1)])
    with app.db.transaction() as s:
        assert over_rate_limit(s, rt, "Flood@AGENCY.example.org", NOW)
        assert not over_rate_limit(s, rt, "p1@agency.example.org", NOW)


def test_the_rate_limit_counts_by_arrival_not_by_when_the_messages_were_read(app: App) -> None:
    """A day's mail read in one go (a worker back after a day down): recorded within a minute,
    but it arrived an hour apart each, so no hour holds more than the limit; the same number
    arriving within the hour does."""
    rt = app.runtime()
    limit = app.config.daemon.sender_messages_per_hour
    with app.db.transaction() as s:
        s.execute(insert(InboundMessage), [
            _row(2000 + i, sender="busy@agency.example.org", received_at=NOW - timedelta(seconds=i),
                 arrived_at=NOW - timedelta(hours=i, minutes=1)) for i in range(limit * 3)])
        s.execute(insert(InboundMessage), [
            _row(3000 + i, sender="loop@agency.example.org", received_at=NOW - timedelta(days=1),
                 arrived_at=NOW - timedelta(minutes=2 * i + 1)) for i in range(limit + 1)])
    with app.db.transaction() as s:
        assert not over_rate_limit(s, rt, "busy@agency.example.org", NOW)
        assert over_rate_limit(s, rt, "loop@agency.example.org", NOW)
        # Judged at its own arrival: the loop's messages had not arrived yet a day earlier.
        assert not over_rate_limit(s, rt, "loop@agency.example.org", NOW - timedelta(days=1))
