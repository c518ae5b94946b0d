"""Queue an email: render it and add it to the outbox in the caller's transaction, composed there or,
where the caller asks (ingest and the sweep: `COMPOSE_WHEN_SENT`), as a draft the sender composes."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailflow.addresses import unique_addresses
from mailflow.composer import Attachment, Envelope, compose
from mailflow.core.references import new_message_id, plus_address, sign_message_id, sign_token
from mailflow.db.models import Case, OutboxMessage
from mailflow.rendering import RenderedMail

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
    row = OutboxMessage(
        partnership=partnership.prefix, case_id=case.id if case is not None else None, kind=kind,
        message_id=message_id, envelope_from=partnership.address, recipients=list(envelope.recipients),
        state="pending", attempts=0, next_attempt_at=now, created_at=now,
    )
    if session.info.get(COMPOSE_WHEN_SENT):
        row.draft = _draft(rendered, envelope, now, attachments)
        row.subject = subject_of(rendered, envelope)
    else:
        message = compose(rendered, envelope, now, attachments)
        row.subject, row.stored_raw = str(message["Subject"]), message.as_bytes()
    session.add(row)
    roots = session.info.get(THREAD_ROOTS)
    if roots is not None and case is not None and roots.get(case.id) is None:
        roots[case.id] = message_id
    return row


# session.info key: True where notices are queued as drafts (rendered, not yet composed), to be
# composed by the sender (`materialise`). The sweep sets it: composing a MIME message with the
# standard library costs several times rendering it, and it need not hold the case locks.
COMPOSE_WHEN_SENT = "mailflow.compose_when_sent"


def subject_of(rendered: RenderedMail, envelope: Envelope) -> str:
    """The Subject header `compose` writes."""
    return f"{envelope.subject_prefix} {rendered.subject}".strip()


def _draft(rendered: RenderedMail, envelope: Envelope, date: datetime,
           attachments: Sequence[Attachment] = ()) -> dict[str, Any]:
    # The envelope's fields are strings, None or sequences of strings: a shallow copy is the
    # JSON `dataclasses.asdict` would give, at a tenth of its cost (its deep copy was 6% of a sweep).
    # Attachments (the case's form with an escalation) go as base64 text until the sender
    # composes the message: building the MIME parts is the costly step, not copying the bytes.
    draft: dict[str, Any] = {
        "subject": rendered.subject, "text": rendered.text, "html": rendered.html, "date": date.isoformat(),
        "envelope": {**{f.name: getattr(envelope, f.name) for f in fields(envelope)},
                     "to": list(envelope.to), "cc": list(envelope.cc), "references": list(envelope.references)}}
    if attachments:
        draft["attachments"] = [{"filename": a.filename, "content_type": a.content_type, "content_id": a.content_id,
                                 "data": base64.b64encode(a.data).decode("ascii")} for a in attachments]
    return draft


def compose_draft(draft: Mapping[str, Any]) -> bytes:
    """The message a draft describes, composed as `queue_mail` would have composed it."""
    rendered = RenderedMail(draft["subject"], draft["text"], draft["html"])
    env = draft["envelope"]
    envelope = Envelope(**{**env, "to": tuple(env["to"]), "cc": tuple(env["cc"]),
                           "references": tuple(env["references"])})
    attachments = [Attachment(a["filename"], a["content_type"], base64.b64decode(a["data"]), a.get("content_id"))
                   for a in draft.get("attachments", ())]
    return compose(rendered, envelope, datetime.fromisoformat(draft["date"]), attachments).as_bytes()


def materialise(row: OutboxMessage) -> bytes:
    """The row's bytes, composed from its draft and kept (the sender calls this as it takes the
    row, so a retry sends the same bytes)."""
    if row.stored_raw is None:
        row.stored_raw = compose_draft(row.draft or {})
        row.draft = None
    return row.stored_raw


def reply_token(rt: PartnershipRuntime, case: Case, now: datetime) -> str:
    """The signed token for a Reply-To sent now: the case, its stage, and the last day it acts."""
    expires = (now + timedelta(days=rt.app.config.daemon.reply_token_days)).date()
    return sign_token(case.reference, rt.app.secret_key, stage=case.stage, expires=expires)


# session.info key: {case id: its thread root's Message-ID, or None while it has no outbox row},
# filled for a batch of cases by `preload_thread_roots` (the sweep) and kept up to date here.
THREAD_ROOTS = "mailflow.thread_roots"


def preload_thread_roots(session: Session, case_ids: Iterable[int]) -> None:
    """Look up the thread root of many cases in one query, for the `queue_mail` calls that follow
    in this session. Whoever deletes outbox rows of one of them calls `forget_thread_root`."""
    ids = list(dict.fromkeys(case_ids))
    roots: dict[int, str | None] = session.info.setdefault(THREAD_ROOTS, {})
    if not ids:
        return
    first = (select(func.min(OutboxMessage.id)).where(OutboxMessage.case_id.in_(ids))
             .group_by(OutboxMessage.case_id))
    found = dict(session.execute(select(OutboxMessage.case_id, OutboxMessage.message_id)
                                 .where(OutboxMessage.id.in_(first))).all())
    for case_id in ids:
        roots[case_id] = found.get(case_id)


def forget_thread_root(session: Session, case_id: int) -> None:
    session.info.get(THREAD_ROOTS, {}).pop(case_id, None)


def forget_thread_roots(session: Session) -> None:
    session.info.pop(THREAD_ROOTS, None)


def _thread_root(session: Session, case: Case) -> str | None:
    if case.id is None:
        return None
    roots: dict[int, str | None] | None = session.info.get(THREAD_ROOTS)
    if roots is not None and case.id in roots:
        return roots[case.id]
    root = session.scalars(
        select(OutboxMessage.message_id).where(OutboxMessage.case_id == case.id)
        .order_by(OutboxMessage.id).limit(1)
    ).first()
    if roots is not None:
        roots[case.id] = root   # the case's next notices in this session need not ask again
    return root


def note_new_case(session: Session, case_id: int) -> None:
    """A case this session has just inserted has no outbox row yet: its first notice is its thread
    root, found without a query."""
    session.info.setdefault(THREAD_ROOTS, {})[case_id] = None

