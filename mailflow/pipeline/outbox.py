"""Queue an email: render it, compose it, and add it to the outbox in the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.addresses import unique_addresses
from mailflow.composer import Attachment, Envelope, compose
from mailflow.core.references import new_message_id, plus_address, sign_message_id, sign_token
from mailflow.db.models import Case, OutboxMessage

if TYPE_CHECKING:
    from mailflow.app import PartnershipRuntime


def queue_mail(session: Session, rt: PartnershipRuntime, *, kind: str, to: Sequence[str],
               context: Mapping[str, Any], now: datetime, case: Case | None = None,
               cc: Sequence[str] = (), in_reply_to: str | None = None,
               auto_submitted: str = "auto-generated", attachments: Sequence[Attachment] = (),
               message_id: str | None = None) -> OutboxMessage | None:
    """Add one message to the outbox; None when it has nobody to go to. A given `message_id`
    (unique in the outbox) makes a notice that must go once only fail to insert a second time."""
    to = unique_addresses(to)   # one person per address, however it was spelt
    cc = [a for a in unique_addresses(cc) if a.lower() not in {t.lower() for t in to}]
    if not to and not cc:
        return None
    partnership = rt.config
    reference = case.reference if case is not None else None
    message_id = message_id or new_message_id(reference, rt.app.config.message_id_domain)
    references: list[str] = []
    reply_to = None
    if case is not None:
        root = _thread_root(session, case)
        references = [r for r in (root, in_reply_to) if r]
        reply_to = plus_address(partnership.address, reply_token(rt, case, now))
    rendered = rt.renderer.render(kind, {"partnership": partnership, "policy": rt.policy, **context})
    envelope = Envelope(
        from_addr=partnership.address, to=to, cc=cc, reply_to=reply_to, message_id=message_id,
        in_reply_to=in_reply_to, references=tuple(dict.fromkeys(references)),
        auto_submitted=auto_submitted, subject_prefix=partnership.subject_prefix,
        signature=sign_message_id(message_id, rt.app.secret_key),
    )
    message = compose(rendered, envelope, now, attachments)
    row = OutboxMessage(
        partnership=partnership.prefix, case_id=case.id if case is not None else None, kind=kind,
        message_id=message_id, envelope_from=partnership.address, recipients=list(envelope.recipients),
        subject=str(message["Subject"]), raw=message.as_bytes(), state="pending", attempts=0,
        next_attempt_at=now, created_at=now,
    )
    session.add(row)
    return row


def reply_token(rt: PartnershipRuntime, case: Case, now: datetime) -> str:
    """The signed token for a Reply-To sent now: the case, its stage, and the last day it acts."""
    expires = (now + timedelta(days=rt.app.config.daemon.reply_token_days)).date()
    return sign_token(case.reference, rt.app.secret_key, stage=case.stage, expires=expires)


def _thread_root(session: Session, case: Case) -> str | None:
    if case.id is None:
        return None
    return session.scalars(
        select(OutboxMessage.message_id).where(OutboxMessage.case_id == case.id)
        .order_by(OutboxMessage.id).limit(1)
    ).first()

