"""Source -> parse -> apply -> commit -> settle, one message at a time.

The order is what makes a crash at any line safe: nothing leaves the watched folder until the
transaction that recorded it (raw bytes included) has committed, and a message already recorded
is only settled again, never applied twice (same source id, Message-ID or SHA-256).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mailflow.db.models import InboundMessage
from mailflow.db.store import find_duplicate, record_event
from mailflow.pipeline.apply import apply_message
from mailflow.pipeline.floods import is_flood_hold, tell_business_team_once
from mailflow.pipeline.outbox import queue_mail
from mailflow.sources.base import InboundMail, Outcome
from parsers import parse_message

if TYPE_CHECKING:
    from mailflow.app import PartnershipRuntime

log = logging.getLogger(__name__)


@dataclass
class IngestResult:
    outcomes: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())


def ingest_source(rt: PartnershipRuntime, limit: int | None = None) -> IngestResult:
    """Everything waiting in the partnership's mailbox."""
    result = IngestResult()
    source = rt.source
    for mail in source.fetch():
        outcome, reason = ingest_one(rt, mail)
        source.settle(mail, outcome, reason)
        result.add(outcome.value)
        if limit is not None and result.total >= limit:
            break
    return result


def ingest_one(rt: PartnershipRuntime, mail: InboundMail) -> tuple[Outcome, str | None]:
    """Record and apply one message; returns how the source should settle it."""
    app = rt.app
    now = app.clock.now()
    sha = hashlib.sha256(mail.raw).hexdigest()
    parsed = parse_message(mail.raw, app.config.limits)
    with app.db.transaction() as s:
        duplicate = find_duplicate(s, rt.prefix, mail.source_id, parsed.message_id, sha)
        if duplicate is not None:
            log.info("already recorded as inbound #%s (%s): settling only", duplicate.id, mail.source_id)
            return Outcome(duplicate.outcome), duplicate.reason
        inbound = InboundMessage(
            partnership=rt.prefix, source_id=mail.source_id, folder=mail.folder,
            uidvalidity=mail.uidvalidity, uid=mail.uid, message_id=parsed.message_id, sha256=sha,
            raw=mail.raw, size=len(mail.raw), received_at=now, kind=parsed.kind, outcome="processed",
        )
        s.add(inbound)
        s.flush()
        if parsed.rejected:
            inbound.outcome, inbound.reason = Outcome.QUARANTINED.value, parsed.rejected
        else:
            try:
                with s.begin_nested():
                    outcome, reason = apply_message(s, rt, parsed, inbound, now)
                inbound.outcome, inbound.reason = outcome.value, reason
            except Exception as exc:  # noqa: BLE001 - quarantine and carry on; the raw is kept
                log.error("could not apply inbound #%s: %s", inbound.id, type(exc).__name__)
                log.debug("traceback for inbound #%s", inbound.id, exc_info=True)
                inbound.outcome = Outcome.QUARANTINED.value
                inbound.reason = f"could not be applied: {type(exc).__name__}: {exc}"
        if inbound.outcome == Outcome.QUARANTINED.value:
            _tell_business_team(s, rt, inbound, now)
        log.info("inbound #%s %s: %s", inbound.id, parsed.kind, inbound.outcome)
        return Outcome(inbound.outcome), inbound.reason


def _tell_business_team(s, rt: PartnershipRuntime, inbound: InboundMessage, now) -> None:  # type: ignore[no-untyped-def]
    record_event(s, now, "system", "quarantined", inbound=inbound, reason=inbound.reason)
    if is_flood_hold(inbound):  # one summary per sender an hour, not a notice for each
        tell_business_team_once(s, rt, inbound, now)
        return
    queue_mail(s, rt, kind="quarantine_notice", to=rt.config.business_team, now=now,
               context={"inbound": inbound})
