"""Source -> parse -> apply -> commit -> settle, one message at a time.

The order is what makes a crash at any line safe: nothing leaves the watched folder until the
transaction that recorded it (raw bytes included) has committed, and a message already recorded
is only settled again, never applied twice (same source id, Message-ID or SHA-256).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from mailflow.db.bounds import fit
from mailflow.db.models import InboundMessage
from mailflow.db.store import find_duplicate, message_id_key, record_event
from mailflow.logging_setup import error_summary
from mailflow.metrics import MESSAGES
from mailflow.pipeline.apply import apply_message
from mailflow.pipeline.deadline_rows import NEW_CASES
from mailflow.pipeline.floods import is_flood_hold, tell_business_team_once
from mailflow.pipeline.outbox import COMPOSE_WHEN_SENT, forget_thread_roots, queue_mail
from mailflow.sources.base import InboundMail, Outcome
from parsers.worker import parse_in_worker

if TYPE_CHECKING:
    from datetime import datetime
    from threading import Event

    from sqlalchemy.orm import Session

    from mailflow.app import PartnershipRuntime
    from parsers import ParsedMessage

log = logging.getLogger(__name__)


@dataclass
class IngestResult:
    outcomes: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())


@dataclass(frozen=True)
class Ingested:
    """How one message went: how the source should settle it, why, and whether it had been
    recorded before (then nothing was changed)."""

    outcome: Outcome
    reason: str | None = None
    duplicate: bool = False


class NotRecorded(Exception):
    """A message that could not be recorded, not even as quarantined: it stays in the mailbox."""


def ingest_source(rt: PartnershipRuntime, limit: int | None = None, stop: Event | None = None) -> IngestResult:
    """Everything waiting in the partnership's mailbox. One message that cannot be recorded is
    left where it is; the messages behind it are still read."""
    result = IngestResult()
    source = rt.source
    stream = ingest_stream(rt, source.fetch())
    try:
        for mail, done in stream:
            if done is None:
                result.add("not recorded")
                continue
            source.settle(mail, done.outcome, done.reason)
            result.add(done.outcome.value)
            if (limit is not None and result.total >= limit) or (stop is not None and stop.is_set()):
                break
    finally:
        stream.close()
    return result


def ingest_stream(rt: PartnershipRuntime,
                  mails: Iterable[InboundMail]) -> Generator[tuple[InboundMail, Ingested | None]]:
    """Each message recorded and applied in turn (as ingest_mail; None: not recorded), the next one
    parsed meanwhile: while a message's transaction runs here, the parser process already reads
    the one behind it (taken from `mails` before the current one is handed back). The order of
    the commits is unchanged, and the caller settles each message after its commit as before; a
    message taken but not recorded when the caller stops (the one read ahead) stays in the mailbox,
    as any message not yet read does (sources must not change a message's state before settle)."""
    limits = rt.app.config.limits
    pool: ThreadPoolExecutor | None = None
    ahead: Future[ParsedMessage] | None = None
    try:
        it = iter(mails)
        mail = next(it, None)
        while mail is not None:
            parsing, ahead = ahead, None
            failure: Exception | None = None
            try:
                following = next(it, None)
            except Exception as exc:  # noqa: BLE001 - the mailbox failing: raised once this message is in
                following, failure = None, exc
            if following is not None:
                if pool is None:
                    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parse-ahead")
                if parsing is None:   # the first message: not read ahead, parsed here
                    parsing = pool.submit(parse_in_worker, mail.raw, limits)
                ahead = pool.submit(parse_in_worker, following.raw, limits)
            try:
                done: Ingested | None = ingest_mail(rt, mail, parsing)
            except NotRecorded:
                done = None
            yield mail, done
            if failure is not None:
                raise failure
            mail = following
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def ingest_one(rt: PartnershipRuntime, mail: InboundMail) -> tuple[Outcome, str | None]:
    """Record and apply one message; returns how the source should settle it (see ingest_mail)."""
    done = ingest_mail(rt, mail)
    return done.outcome, done.reason


def ingest_mail(rt: PartnershipRuntime, mail: InboundMail, parsing: Future[ParsedMessage] | None = None) -> Ingested:
    """Record and apply one message; returns how the source should settle it. Whatever goes wrong
    with it (a value the database refuses, a failing rule), the message is recorded as quarantined
    and the business team told; a message another worker recorded first is settled like a
    duplicate. Raises NotRecorded only when not even the quarantine record could be written.
    `parsing`: the message's parse, already under way (ingest_stream); else it is parsed here."""
    app = rt.app
    now = app.clock.now()
    sha = hashlib.sha256(mail.raw).hexdigest()
    source_id = fit(InboundMessage.source_id, mail.source_id) or ""
    message_id: str | None = None
    try:
        # Quarantined when over the time limit; `parsing`: already under way (ingest_stream).
        parsed = parsing.result() if parsing is not None else parse_in_worker(mail.raw, app.config.limits)
        message_id = parsed.message_id
        return _record(rt, mail, parsed, source_id, sha, now)
    except IntegrityError as exc:
        settled = _recorded_by_another(rt, source_id, message_id, sha)
        if settled is not None:
            return settled
        failure: Exception = exc
    except Exception as exc:  # noqa: BLE001 - the message is quarantined below; the mailbox goes on
        failure = exc
    log.error("%s could not be recorded: %s; quarantining it", source_id, error_summary(failure))
    if not isinstance(failure, SQLAlchemyError):  # a database error's traceback carries its parameters
        log.debug("traceback for %s", source_id, exc_info=failure)
    return _quarantine_unrecorded(rt, mail, source_id, message_id, sha, now, failure)


def _record(rt: PartnershipRuntime, mail: InboundMail, parsed: ParsedMessage, source_id: str, sha: str,
            now: datetime) -> Ingested:
    app = rt.app
    with app.db.transaction() as s:
        # Notices are rendered here and composed by the sender as it takes them (as the sweep's).
        s.info[COMPOSE_WHEN_SENT] = True
        duplicate = find_duplicate(s, rt.prefix, source_id, parsed.message_id, sha)
        if duplicate is not None:
            log.info("already recorded as inbound #%s (%s): settling only", duplicate.id, source_id)
            return Ingested(Outcome(duplicate.outcome), duplicate.reason, duplicate=True)
        inbound = InboundMessage(
            partnership=rt.prefix, source_id=source_id, folder=mail.folder,
            uidvalidity=mail.uidvalidity, uid=mail.uid, message_id=parsed.message_id,
            message_id_key=message_id_key(parsed.message_id), sha256=sha,
            raw=mail.raw, size=len(mail.raw), received_at=now, arrived_at=arrival(mail, now),
            kind=parsed.kind, outcome="processed",
            # Set here as apply_message sets it, so the insert carries it (no UPDATE after the flush).
            sender=None if parsed.rejected or not parsed.from_addr else parsed.from_addr.lower(),
        )
        s.add(inbound)
        s.flush()
        if parsed.rejected:
            inbound.outcome, inbound.reason = Outcome.QUARANTINED.value, parsed.rejected
        else:
            try:
                with s.begin_nested():
                    outcome, reason = apply_message(s, rt, parsed, inbound, now)
                inbound.outcome = outcome.value
                if reason is not None:   # None is what it holds: setting it again was an UPDATE
                    inbound.reason = reason
            except Exception as exc:  # quarantine and carry on; the raw is kept
                forget_thread_roots(s)   # a case of the rolled-back savepoint is no longer there
                s.info.pop(NEW_CASES, None)
                log.error("could not apply inbound #%s: %s", inbound.id, error_summary(exc))
                if not isinstance(exc, SQLAlchemyError):
                    log.debug("traceback for inbound #%s", inbound.id, exc_info=True)
                inbound.outcome = Outcome.QUARANTINED.value
                inbound.reason = f"could not be applied: {error_summary(exc)}"
        if inbound.outcome == Outcome.QUARANTINED.value:
            _tell_business_team(s, rt, inbound, now)
        log.info("inbound #%s %s: %s", inbound.id, parsed.kind, inbound.outcome)
        MESSAGES.labels(rt.prefix, parsed.kind or "unknown", inbound.outcome).inc()
        return Ingested(Outcome(inbound.outcome), inbound.reason)


def arrival(mail: InboundMail, now: datetime) -> datetime:
    """When the mailbox received the message: as its source says, never later than now (a server's
    clock ahead of ours); now when the source does not say."""
    return now if mail.arrived_at is None else min(mail.arrived_at, now)


def _recorded_by_another(rt: PartnershipRuntime, source_id: str, message_id: str | None,
                         sha: str) -> Ingested | None:
    """After a unique-key conflict: the row another worker committed first, settled as a duplicate."""
    try:
        with rt.app.db.transaction() as s:
            duplicate = find_duplicate(s, rt.prefix, source_id, message_id, sha)
            if duplicate is None:
                return None
            log.info("%s was recorded meanwhile by another worker as inbound #%s: settling only",
                     source_id, duplicate.id)
            return Ingested(Outcome(duplicate.outcome), duplicate.reason, duplicate=True)
    except SQLAlchemyError as exc:
        log.error("%s: could not look up the conflicting record: %s", source_id, error_summary(exc))
        return None


def _quarantine_unrecorded(rt: PartnershipRuntime, mail: InboundMail, source_id: str, message_id: str | None,
                           sha: str, now: datetime, failure: Exception) -> Ingested:
    """The least that can be recorded (raw bytes kept), quarantined, in a fresh transaction."""
    reason = f"could not be recorded: {error_summary(failure)}"
    try:
        with rt.app.db.transaction() as s:
            inbound = InboundMessage(
                partnership=rt.prefix, source_id=source_id, folder=mail.folder, uidvalidity=mail.uidvalidity,
                uid=mail.uid, message_id=message_id, message_id_key=message_id_key(message_id), sha256=sha,
                raw=mail.raw, size=len(mail.raw), received_at=now, arrived_at=arrival(mail, now), kind=None,
                outcome=Outcome.QUARANTINED.value, reason=reason,
            )
            s.add(inbound)
            s.flush()
            try:
                with s.begin_nested():
                    _tell_business_team(s, rt, inbound, now)
            except Exception as exc:  # noqa: BLE001 - the record matters more than the notice
                log.error("inbound #%s: the business team could not be told: %s", inbound.id, error_summary(exc))
            log.info("inbound #%s quarantined: %s", inbound.id, reason)
            return Ingested(Outcome.QUARANTINED, inbound.reason)
    except IntegrityError:
        settled = _recorded_by_another(rt, source_id, message_id, sha)
        if settled is not None:
            return settled
        log.error("%s left in the mailbox: its quarantine record conflicts with another", source_id)
    except Exception as exc:  # noqa: BLE001 - reported by source id only, the mailbox goes on
        log.error("%s left in the mailbox: not even a quarantine record could be written: %s",
                  source_id, error_summary(exc) if isinstance(exc, SQLAlchemyError) else type(exc).__name__)
    raise NotRecorded(source_id)


def _tell_business_team(s: Session, rt: PartnershipRuntime, inbound: InboundMessage, now: datetime) -> None:
    record_event(s, now, "system", "quarantined", inbound=inbound, reason=inbound.reason)
    if is_flood_hold(inbound):  # one summary per sender an hour, not a notice for each
        tell_business_team_once(s, rt, inbound, now)
        return
    queue_mail(s, rt, kind="quarantine_notice", to=rt.config.business_team, now=now,
               context={"inbound": inbound})
