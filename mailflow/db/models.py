"""The case store: SQLAlchemy 2.0 typed models. The database is the source of truth.

Deadlines are rows with an indexed due time; the ledger makes each notice fire once per
(case, stage, step, kind); the outbox holds every outgoing email, written in the same
transaction as the case change that caused it; events are the append-only audit trail.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from mailflow.db.bounds import JSON_UNBOUNDED

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Time-zone aware UTC on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")

        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None

        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class CaseCounter(Base):
    """The last case number issued per partnership and year: references are gap-free."""

    __tablename__ = "case_counters"
    partnership: Mapped[str] = mapped_column(String(16), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_number: Mapped[int] = mapped_column(Integer, default=0)


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        # The overview (digest, dashboard) counts by these in the index alone, at 10^5 cases.
        Index("ix_cases_overview", "partnership", "state", "stage", "urgent", "opened_at"),
        Index("ix_cases_resolved", "partnership", "resolved_at"),
        Index("ix_cases_closed", "partnership", "closed_at"),
        # The overview counts the live cases per agency from these alone.
        Index("ix_cases_raising_agency", "partnership", "state", "raising_agency"),
        Index("ix_cases_receiving_agency", "partnership", "state", "receiving_agency"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    partnership: Mapped[str] = mapped_column(String(16), index=True)   # the partnership's prefix
    policy: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), index=True)
    stage: Mapped[int] = mapped_column(Integer, default=1)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)   # canonical form fields
    missing: Mapped[list[str]] = mapped_column(JSON, default=list)       # what an incomplete form lacks
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)             # the case's clock start
    stage_started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    outcome: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # The first agency named on each side of the disagreement (the participants hold them all):
    # what the digest and the dashboard count a case under. Set by `note_agency`.
    raising_agency: Mapped[str | None] = mapped_column(String(200), nullable=True)
    receiving_agency: Mapped[str | None] = mapped_column(String(200), nullable=True)

    participants: Mapped[list[Participant]] = relationship(back_populates="case", order_by="Participant.id")
    deadlines: Mapped[list[Deadline]] = relationship(back_populates="case", order_by="Deadline.due_at")
    events: Mapped[list[Event]] = relationship(back_populates="case", order_by="Event.id")

    def note_agency(self, side: str, agency: str | None) -> None:
        """A participant of `agency` joined on `side`: the first agency named on a side is the case's."""
        if not agency:
            return
        if side == "raiser" and self.raising_agency is None:
            self.raising_agency = agency
        elif side == "other" and self.receiving_agency is None:
            self.receiving_agency = agency


class Participant(Base):
    """Someone a case involves: the raiser, the other agency, and the managers at each stage."""

    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("case_id", "email", "role", name="uq_participants_case_email_role"),
                      Index("ix_participants_case_side_agency", "case_id", "side", "agency"),   # the overview
                      Index("ix_participants_agency_lower", func.lower(text("agency")), "case_id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    role: Mapped[str] = mapped_column(String(32))        # raiser | other | <directory tier>
    side: Mapped[str] = mapped_column(String(16))        # raiser | other | partnership
    agency: Mapped[str | None] = mapped_column(String(200), nullable=True)
    stage: Mapped[int | None] = mapped_column(Integer, nullable=True)   # the stage that brought them in
    case: Mapped[Case] = relationship(back_populates="participants")


class InboundMessage(Base):
    """Every message read from a mailbox, raw bytes kept, before anything else is done with it."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        # What makes two workers reading the same mailbox record each message once: the place
        # in the mailbox, the Message-ID (by its hash: a long one does not fit a btree entry) and
        # the bytes are each unique per partnership. NULL Message-IDs do not collide.
        UniqueConstraint("partnership", "source_id", name="uq_inbound_source"),
        UniqueConstraint("partnership", "message_id_key", name="uq_inbound_message_id"),
        UniqueConstraint("partnership", "sha256", name="uq_inbound_sha256"),
        Index("ix_inbound_sender_arrival", "partnership", "sender", "arrived_at"),   # the hourly limit
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    partnership: Mapped[str] = mapped_column(String(16))
    source_id: Mapped[str] = mapped_column(String(300))
    folder: Mapped[str | None] = mapped_column(String(200), nullable=True)
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    uid: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    message_id: Mapped[str | None] = mapped_column(String(998), nullable=True)   # for people: may be cut short
    message_id_key: Mapped[str | None] = mapped_column(String(64), nullable=True)  # SHA-256 of the whole Message-ID
    sender: Mapped[str | None] = mapped_column(String(320), nullable=True)
    sha256: Mapped[str] = mapped_column(String(64))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)   # when mailflow recorded it
    # When the mailbox received it, as the source says (IMAP INTERNALDATE, the Maildir delivery,
    # the mbox "From " line, Graph's receivedDateTime), never later than received_at; received_at
    # where the source does not say. The sender's hourly limit counts by it: a backlog read at
    # once (a restart after a day down, an old mailbox imported) is not a flood. Set on every
    # insert; NULL only in rows from before revision 0012 that the migration did not reach.
    arrived_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    outcome: Mapped[str] = mapped_column(String(16))      # processed | quarantined | left
    reason: Mapped[str | None] = mapped_column(Text, nullable=True, info={"max_chars": 2000})
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), nullable=True, index=True)


class Deadline(Base):
    """A moment the sweeper must act: a reminder, an escalation, a final alert, a confirmation chase."""

    __tablename__ = "deadlines"
    __table_args__ = (
        Index("ix_deadlines_due", "state", "due_at", "id"),             # the sweep's due order
        Index("ix_deadlines_case_due", "case_id", "state", "due_at"),   # a case's next deadline
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    stage: Mapped[int] = mapped_column(Integer)
    step: Mapped[str] = mapped_column(String(16))         # raise | respond | resolve | confirm
    action: Mapped[str] = mapped_column(String(16))       # remind | escalate | final_alert | chase
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    state: Mapped[str] = mapped_column(String(12), default="pending")   # pending | done | cancelled
    rule: Mapped[str] = mapped_column(Text)               # why it is due then, for a person
    skipped: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [[iso date, holiday name], ...]
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    case: Mapped[Case] = relationship(back_populates="deadlines")


class LedgerEntry(Base):
    """A notice that has fired. The unique key is what makes it fire exactly once: per case, stage,
    step and kind, and per due instant, so a deadline made anew (an extension, a reopened case)
    gets its own notice while the same deadline swept twice still fires once."""

    __tablename__ = "ledger"
    __table_args__ = (UniqueConstraint("case_id", "stage", "step", "kind", "due_at", name="uq_ledger_notice"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    stage: Mapped[int] = mapped_column(Integer)
    step: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    fired_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OutboxMessage(Base):
    """An outgoing email, written with the change that caused it; drained by the sender."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_ready", "state", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    partnership: Mapped[str] = mapped_column(String(16))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(32))          # acknowledgement | reminder | escalation | ...
    message_id: Mapped[str] = mapped_column(String(998), unique=True)
    envelope_from: Mapped[str] = mapped_column(String(320))
    recipients: Mapped[list[str]] = mapped_column(JSON)
    subject: Mapped[str] = mapped_column(String(998))      # carries the case reference, never personal data
    # The message as sent. A notice queued as a draft (rendered parts and envelope; see
    # mailflow/pipeline/outbox.py) is composed when the sender takes it, and kept then.
    stored_raw: Mapped[bytes | None] = mapped_column("raw", LargeBinary, nullable=True)
    draft: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True, info={JSON_UNBOUNDED: True})
    state: Mapped[str] = mapped_column(String(12), default="pending")  # pending | sending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True, info={"max_chars": 2000})
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    @property
    def raw(self) -> bytes:
        """The message's bytes: as stored, or composed now from its draft (the same message the
        sender will compose; only the MIME boundary may differ until it has been sent)."""
        if self.stored_raw is not None:
            return self.stored_raw
        from mailflow.pipeline.outbox import compose_draft

        return compose_draft(self.draft or {})

    @raw.setter
    def raw(self, value: bytes) -> None:
        self.stored_raw = value


class Event(Base):
    """The audit trail: who did what, when, and from which message. Append-only in fact: each
    partnership's events form a hash chain (`mailflow.core.audit_chain`), sealed as the
    transaction that wrote them commits (`mailflow.pipeline.audit`), checked by `mailflow audit
    verify`. Retention erases an old event's content (actor, case, message, detail), never its
    place in the chain: `erased_by` names the purge event that did it."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("partnership", "seq", name="uq_events_partnership_seq"),
                      Index("ix_events_action_at", "action", "at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    partnership: Mapped[str] = mapped_column(String(16))
    seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)   # set as the transaction commits
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), nullable=True, index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(320))       # an email address, "system", "deadline", "cli:<who>"
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"), nullable=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    content_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    erased_by: Mapped[int | None] = mapped_column(BigInteger, nullable=True)   # the purge event's id
    case: Mapped[Case | None] = relationship(back_populates="events")


class AuditHead(Base):
    """The last sealed event of each partnership's chain. Appends update this row, which
    serialises them per partnership across workers (a row lock on PostgreSQL until commit;
    SQLite serialises writers already); a deleted last event shows against it."""

    __tablename__ = "audit_heads"
    partnership: Mapped[str] = mapped_column(String(16), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class RetainedCount(Base):
    """What is left of purged cases for the Board report: anonymous counts, nothing about a person.
    One row per partnership, month opened, raising agency, stage reached and outcome."""

    __tablename__ = "retained_counts"
    __table_args__ = (UniqueConstraint("partnership", "month", "agency", "stage_reached", "outcome",
                                       name="uq_retained_counts_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    partnership: Mapped[str] = mapped_column(String(16))
    month: Mapped[str] = mapped_column(String(7))          # YYYY-MM the cases were opened (UK)
    agency: Mapped[str] = mapped_column(String(200))
    stage_reached: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))       # the case's final state
    cases: Mapped[int] = mapped_column(Integer, default=0)
    overdue: Mapped[int] = mapped_column(Integer, default=0)


class RetainedMeasure(Base):
    """Other anonymous totals kept of purged cases, per partnership and month opened: time in each
    stage (`stage_days:<n>`: intervals, working days, calendar days; `stage_longest:<n>`: the most
    working days) and learning themes
    (`theme:<name>`: cases)."""

    __tablename__ = "retained_measures"
    __table_args__ = (UniqueConstraint("partnership", "month", "measure", name="uq_retained_measures_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    partnership: Mapped[str] = mapped_column(String(16))
    month: Mapped[str] = mapped_column(String(7))
    measure: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(Integer, default=0)
    working_days: Mapped[int] = mapped_column(Integer, default=0)
    calendar_days: Mapped[int] = mapped_column(Integer, default=0)


class MailboxSync(Base):
    """Per-folder sync state of a source (UIDVALIDITY, last UID, a delta cursor) and its health."""

    __tablename__ = "mailbox_sync"
    source: Mapped[str] = mapped_column(String(200), primary_key=True)
    folder: Mapped[str] = mapped_column(String(200), primary_key=True)
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    cursor: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_success_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class ScheduleClaim(Base):
    """A scheduled send that has been claimed: a digest, a report or a watchdog alert. The unique
    key (partnership, kind, period) is what makes it go once across any number of workers: the row
    is inserted in the transaction that queues the mail, and a second worker's insert conflicts."""

    __tablename__ = "schedules"
    __table_args__ = (UniqueConstraint("partnership", "kind", "period", name="uq_schedules_key"),
                      Index("ix_schedules_latest", "partnership", "kind", "due_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    partnership: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32))          # digest | report | watchdog
    period: Mapped[str] = mapped_column(String(64))        # the scheduled instant (UTC ISO) or a sequence
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)  # when it was due
    claimed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    late: Mapped[bool] = mapped_column(Boolean, default=False)   # sent after its time (the daemon was down)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class WebUser(Base):
    """Someone who signs in to the web console: a local account (argon2 hash) or an OpenID Connect
    user recorded at their first sign-in. `session_epoch` moves on sign-out and on every change of
    password or role, so older session cookies stop working."""

    __tablename__ = "web_users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)   # lower case
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    role: Mapped[str] = mapped_column(String(16))                  # viewer | team | admin
    kind: Mapped[str] = mapped_column(String(8))                   # local | oidc
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class LoginFailure(Base):
    """A failed sign-in, by account and by client address: the throttle counts these rows, so every
    worker sharing the database agrees."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_account", "account", "at"),
        Index("ix_login_failures_client", "client", "at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(String(320))
    client: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
