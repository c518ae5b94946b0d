"""Drain the outbox through the partnership's transport: retries with backoff, never twice.

Each attempt is recorded (state `sending`, attempts+1) and committed before the transport is
called. A row found in `sending` was interrupted mid-send: the transport's own record decides
(`already_sent`); where it keeps none, the message is sent again (at-least-once is the safer
failure for a safeguarding notice than silence).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.db.models import OutboxMessage
from mailflow.metrics import NOTICES_FAILED, NOTICES_SENT
from mailflow.pipeline.outbox import materialise
from mailflow.transports.base import OutgoingMail, PermanentSendError, SendError, TransientSendError

if TYPE_CHECKING:
    from mailflow.app import PartnershipRuntime

log = logging.getLogger(__name__)

BASE_BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=1)


@dataclass
class DrainResult:
    sent: int = 0
    retried: int = 0
    failed: int = 0


def backoff(attempts: int, retry_after: float | None = None) -> timedelta:
    delay: timedelta = min(BASE_BACKOFF * (2 ** max(attempts - 1, 0)), MAX_BACKOFF)
    delay = delay * (0.8 + 0.4 * random.random())  # jitter: workers do not retry in lockstep
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=retry_after))
    return delay


def drain(rt: PartnershipRuntime, now: datetime, limit: int = 100) -> DrainResult:
    result = DrainResult()
    db = rt.app.db
    max_attempts = rt.app.config.daemon.outbox_max_attempts
    for _ in range(limit):
        with db.transaction() as s:
            stmt = (select(OutboxMessage)
                    .where(OutboxMessage.partnership == rt.prefix,
                           OutboxMessage.state.in_(("pending", "sending")),
                           OutboxMessage.next_attempt_at <= now)
                    .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(1))
            if db.is_postgres:
                stmt = stmt.with_for_update(skip_locked=True)
            row = s.scalars(stmt).first()
            if row is None:
                break
            interrupted = row.state == "sending"
            row.state, row.attempts = "sending", row.attempts + 1
            # Claim the row for a while so another worker does not pick it up mid-send.
            row.next_attempt_at = now + timedelta(minutes=5)
            mail = OutgoingMail(row.message_id, row.envelope_from, tuple(row.recipients), materialise(row))
            row_id, attempts = row.id, row.attempts
        outcome, error, retry_after = _send(rt, mail, interrupted)
        with db.transaction() as s:
            row = s.get(OutboxMessage, row_id)
            assert row is not None
            if outcome == "sent":
                row.state, row.sent_at, row.last_error = "sent", now, None
                result.sent += 1
                log.info("sent %s (%s)", row.message_id, row.kind)
                NOTICES_SENT.labels(rt.prefix, row.kind).inc()
            elif outcome == "retry" and attempts < max_attempts:
                row.state, row.last_error = "pending", error
                row.next_attempt_at = now + backoff(attempts, retry_after)
                result.retried += 1
                log.warning("will retry %s: %s", row.message_id, error)
                NOTICES_FAILED.labels(rt.prefix, row.kind, "false").inc()
            else:
                row.state, row.last_error = "failed", error
                result.failed += 1
                log.error("failed %s: %s", row.message_id, error)
                NOTICES_FAILED.labels(rt.prefix, row.kind, "true").inc()
                _tell_business_team(s, rt, row, now)
    return result


def _tell_business_team(s: Session, rt: PartnershipRuntime, row: OutboxMessage, now: datetime) -> None:
    """A notice that will never go: the business team hears of it (never about its own notices,
    which would loop; those show in the digest and `mailflow outbox list`)."""
    if row.case_id is None or row.kind == "delivery_failure":
        return
    from mailflow.db.models import Case
    from mailflow.pipeline.notices import business_team, notify

    case = s.get(Case, row.case_id)
    if case is not None:
        notify(s, rt, case, "delivery_failure", now, to=business_team(rt), failed_kind=row.kind,
               recipients=list(row.recipients), error=row.last_error)


def _send(rt: PartnershipRuntime, mail: OutgoingMail, interrupted: bool) -> tuple[str, str | None, float | None]:
    transport = rt.transport
    if interrupted and transport.already_sent(mail.message_id):
        return "sent", None, None
    try:
        transport.send(mail)
    except TransientSendError as exc:
        return "retry", str(exc), exc.retry_after
    except PermanentSendError as exc:
        return "failed", str(exc), None
    except SendError as exc:
        return "retry", str(exc), None
    except OSError as exc:
        return "retry", f"{type(exc).__name__}: {exc}", None
    return "sent", None, None
