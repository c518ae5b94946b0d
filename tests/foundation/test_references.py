"""Case references are unique and gap-free per partnership and year, even with workers racing."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from mailflow.core.references import REFERENCE, format_reference, read_token, sign_legacy_token, sign_token
from mailflow.db.database import Database
from mailflow.db.models import Case
from mailflow.db.store import next_reference


def _new_case(db: Database, prefix: str, fail: bool = False) -> str | None:
    now = datetime(2026, 12, 21, 10, tzinfo=UTC)
    try:
        with db.transaction() as s:
            ref = next_reference(s, prefix, 2026)
            s.add(Case(reference=ref, partnership=prefix, policy="swindon", state="open", stage=1, urgent=False,
                       fields={}, missing=[], opened_at=now, stage_started_at=now, updated_at=now))
            s.flush()
            if fail:
                raise RuntimeError("the transaction fails after taking a number")
            return ref
    except RuntimeError:
        return None


def test_references_are_gap_free_with_concurrent_workers_and_rollbacks(db_url: str) -> None:
    db = Database(db_url)
    db.upgrade()
    made: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        for i in range(10):
            ref = _new_case(db, "SSP", fail=(i % 4 == 3))  # some transactions roll back
            if ref:
                with lock:
                    made.append(ref)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    with db.transaction() as s:
        refs = sorted(s.scalars(select(Case.reference)))
    assert sorted(made) == refs
    assert refs == [format_reference("SSP", 2026, n) for n in range(1, len(refs) + 1)]  # no gaps, no repeats
    assert len(refs) == 4 * 10 - 4 * 2
    assert _new_case(db, "KMSAB") == "KMSAB-2026-0001"  # each partnership counts on its own
    db.dispose()


def test_reference_format_and_tokens() -> None:
    assert format_reference("SSP", 2026, 7) == "SSP-2026-0007"
    assert format_reference("SSP", 2026, 12345) == "SSP-2026-12345"
    assert REFERENCE.search("RE: [secure] [SSP-2026-0007] Stage 2").group(0) == "SSP-2026-0007"
    token = sign_token("SSP-2026-0007", b"key", stage=2, expires=date(2027, 2, 19))
    assert token.startswith("SSP-2026-0007.2.20270219.")
    claims = read_token(token, b"key")
    assert claims is not None and (claims.reference, claims.stage, claims.expires) == \
        ("SSP-2026-0007", 2, date(2027, 2, 19))
    assert read_token(token, b"other key") is None
    assert read_token(token.replace("0007", "0008"), b"key") is None
    # The stage and the expiry are signed: neither can be moved on.
    assert read_token(token.replace(".2.", ".3."), b"key") is None
    assert read_token(token.replace("20270219", "20370219"), b"key") is None
    legacy = read_token(sign_legacy_token("SSP-2026-0007", b"key"), b"key")
    assert legacy is not None and legacy.legacy and legacy.stage is None and legacy.expires is None
    with pytest.raises(TypeError):
        read_token(None, b"key")  # type: ignore[arg-type]
