"""The audit trail's hash chain, pure: how an event is hashed and how a chain is checked.

Each partnership's events form one chain. An event's hash is SHA-256 over a canonical JSON
serialisation (sorted keys, no spaces, ASCII) of its header -- partnership, sequence number,
the previous event's hash, the instant (UTC, microseconds), the action -- and of the hash of its
content (who, which case, which inbound message, the detail). Hashing the content separately is
what lets retention erase an old event's content (personal data) while its content hash, and so
the chain, stays verifiable: an erased event keeps its place, its header and its content hash.

`verify` walks one chain in sequence order and names every event that was edited, every gap left
by a deletion, every event inserted (or re-linked) and every event appended past the chain head.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
VERSION = 1


def canonical(value: Any) -> bytes:
    # NaN is written as the JSON column writes it (SQLite keeps it): a detail the column can
    # store never makes the commit fail here.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _sha256(value: Any) -> str:
    return hashlib.sha256(canonical(value)).hexdigest()


def instant(at: datetime) -> str:
    """UTC to the microsecond; a naive value (SQLite read without the model's type) is UTC."""
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.isoformat(timespec="microseconds")


def content_hash(actor: str, case_ref: str | None, inbound_id: int | None, detail: Any) -> str:
    return _sha256({"actor": actor, "case": case_ref, "inbound": inbound_id, "detail": detail})


def event_hash(partnership: str, seq: int, prev_hash: str, at: datetime, action: str, content: str) -> str:
    return _sha256({"v": VERSION, "partnership": partnership, "seq": seq, "prev": prev_hash,
                    "at": instant(at), "action": action, "content": content})


@dataclass(frozen=True)
class ChainedEvent:
    """An event as stored, for checking. `erased_by` is the id of the purge event that erased its
    content (then its content is not recomputed: only its stored content hash counts)."""

    id: int
    seq: int | None
    partnership: str
    at: datetime
    action: str
    actor: str
    case_ref: str | None
    inbound_id: int | None
    detail: Any
    prev_hash: str | None
    content_hash: str | None
    hash: str | None
    erased_by: int | None = None


@dataclass(frozen=True)
class Problem:
    event_id: int | None
    seq: int | None
    what: str

    def __str__(self) -> str:
        where = f"event #{self.event_id} (seq {self.seq})" if self.event_id is not None else f"seq {self.seq}"
        return f"{where}: {self.what}"


@dataclass
class Verdict:
    partnership: str
    events: int = 0
    erased: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    problems: list[Problem] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(partnership: str, events: Iterable[ChainedEvent], head: tuple[int, str] | None) -> Verdict:
    """Check one partnership's chain: `events` in sequence order (unsealed events, seq None,
    first or last), `head` the chain-head row (last seq, last hash) or None when none exists."""
    verdict = Verdict(partnership, problems=[])
    problems = verdict.problems
    assert problems is not None
    expected_seq, prev = 1, GENESIS
    last_seq, last_hash = 0, GENESIS
    for e in events:
        verdict.events += 1
        if e.seq is None or e.hash is None or e.prev_hash is None or e.content_hash is None:
            problems.append(Problem(e.id, e.seq, "not in the chain (inserted outside the audit append)"))
            continue
        if e.seq > expected_seq:
            gap = f"seq {expected_seq}" if e.seq == expected_seq + 1 else f"seqs {expected_seq}-{e.seq - 1}"
            problems.append(Problem(None, expected_seq, f"missing: {gap} deleted (before event #{e.id})"))
        if e.prev_hash != prev:
            problems.append(Problem(e.id, e.seq, "does not follow the event before it "
                                                 "(an event was inserted, deleted or re-linked here)"))
        if e.erased_by is None:
            if content_hash(e.actor, e.case_ref, e.inbound_id, e.detail) != e.content_hash:
                problems.append(Problem(e.id, e.seq, "edited: its content (who, case, message or detail) "
                                                     "no longer matches its hash"))
        else:
            verdict.erased += 1
            if e.actor or e.detail or e.case_ref is not None or e.inbound_id is not None:
                problems.append(Problem(e.id, e.seq, "marked erased but still holds content"))
        if event_hash(e.partnership, e.seq, e.prev_hash, e.at, e.action, e.content_hash) != e.hash:
            problems.append(Problem(e.id, e.seq, "edited: its header (time, action, place in the chain) "
                                                 "no longer matches its hash"))
        expected_seq, prev = e.seq + 1, e.hash
        last_seq, last_hash = e.seq, e.hash
    verdict.head_seq, verdict.head_hash = last_seq, last_hash
    head_seq, head_hash = head if head is not None else (0, GENESIS)
    if last_seq < head_seq:
        problems.append(Problem(None, last_seq + 1, f"missing: the last {head_seq - last_seq} event(s) up to "
                                                    f"seq {head_seq} deleted"))
    elif last_seq > head_seq:
        problems.append(Problem(None, head_seq + 1, f"{last_seq - head_seq} event(s) after the chain head "
                                                    f"(seq {head_seq}): inserted"))
    elif last_hash != head_hash:
        problems.append(Problem(None, last_seq, "the last event is not the one the chain head recorded"))
    return verdict
