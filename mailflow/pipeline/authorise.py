"""Who may move a case by email. A command changes a case only when every check passes:

1. the reply is tied to the case: it answers a message mailflow sent for this case (thread),
   or carries this case's signed reply token, unexpired, and of the case's current stage unless
   its holder is still a participant; a subject tag alone is not enough;
2. its From header holds one unambiguous address (never a display name or a Sender header), and
   that sender is a participant, a directory contact at the case's current stage, or the business team;
3. the receiving server's Authentication-Results shows no SPF/DKIM/DMARC (or compauth) failure;
4. it is not automated (out-of-office, bulk, bounce);
5. its sender is under the per-sender rate limit.
Anything else is kept as an unverified note and the business team is told.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailflow.core.references import read_token, verify_message_id
from mailflow.db.models import Case, InboundMessage, OutboxMessage
from mailflow.pipeline.notices import business_team, tier_people
from parsers.classify import OwnMail

if TYPE_CHECKING:
    from mailflow.app import PartnershipRuntime
    from parsers import ParsedMessage

_FAILING = {"fail", "softfail", "permerror"}


@dataclass
class Verdict:
    reasons: list[str] = field(default_factory=list)
    tied_by: str | None = None

    @property
    def trusted(self) -> bool:
        return not self.reasons


def tied_by(s: Session, rt: PartnershipRuntime, parsed: ParsedMessage, case: Case,
            now: datetime) -> str | None:
    """"thread" or "token" when the reply provably belongs to this case, else None."""
    refs = [r for r in [parsed.in_reply_to, *parsed.references] if r]
    if refs:
        hit = s.scalar(select(func.count()).select_from(OutboxMessage)
                       .where(OutboxMessage.case_id == case.id, OutboxMessage.message_id.in_(refs)))
        if hit:
            return "thread"
    if parsed.reply_token and token_problem(s, rt, parsed, case, now) is None:
        return "token"
    return None


def token_problem(s: Session, rt: PartnershipRuntime, parsed: ParsedMessage, case: Case,
                  now: datetime) -> str | None:
    """None when the reply token may act on this case now, else why not.

    A token names the case, the stage it was sent at and the last day it acts
    ([daemon] reply_token_days after the mail that carried it, 60 by default). Expired, it
    cannot act; from another stage, it acts only when its holder (the sender) is still a
    participant: involved at the case's current stage (see `_still_participant`). A token of
    the first format (no stage, no expiry, still in people's mailboxes) is read as from an
    unknown stage, so its holder must still be a participant, and as expiring
    `reply_token_days` after mailflow last sent it
    (the newest outbox row carrying it): none is minted any more, so all expire within that
    many days of the upgrade."""
    if not parsed.reply_token:
        return "no reply token"
    claims = read_token(parsed.reply_token, rt.app.secret_key)
    if claims is None:
        return "the reply token is not genuine"
    if claims.reference != case.reference:
        return "the reply token is for another case"
    days = rt.app.config.daemon.reply_token_days
    if claims.expires is None:
        if not _legacy_token_sent_since(s, case, parsed.reply_token, now - timedelta(days=days)):
            return f"the reply token (old format) was last sent more than {days} days ago"
    elif now.date() > claims.expires:
        return f"the reply token expired on {claims.expires.isoformat()}"
    if claims.stage != case.stage and not _still_participant(rt, case, parsed.from_addr):
        was = f"Stage {claims.stage}" if claims.stage is not None else "an unknown stage (old format)"
        return (f"the reply token is from {was}, the case is at Stage {case.stage}, and its holder "
                "is no longer a participant")
    return None


def _legacy_token_sent_since(s: Session, case: Case, token: str, since: datetime) -> bool:
    needle = f"+{token}@".encode()
    # Old-format tokens went out in messages composed when queued (never drafts).
    raws = s.scalars(select(OutboxMessage.stored_raw).where(OutboxMessage.case_id == case.id,
                                                            OutboxMessage.stored_raw.is_not(None),
                                                            OutboxMessage.created_at >= since))
    return any(raw is not None and needle in raw for raw in raws)


def _still_participant(rt: PartnershipRuntime, case: Case, sender: str | None) -> bool:
    """Someone the case involves now: its raiser and other side (every stage), the people of its
    current stage, or the business team. Managers of an earlier stage are no longer."""
    if not sender:
        return False
    now_involved = {p.email.lower() for p in case.participants if p.stage is None or p.stage == case.stage}
    now_involved |= {a.lower() for a in [*tier_people(rt, case, case.stage), *business_team(rt)]}
    return sender.lower() in now_involved


def sender_allowed(rt: PartnershipRuntime, case: Case, sender: str | None) -> bool:
    if not sender:
        return False
    sender = sender.lower()
    allowed = {p.email.lower() for p in case.participants}
    allowed |= {a.lower() for a in tier_people(rt, case, case.stage)}
    allowed |= {a.lower() for a in business_team(rt)}
    return sender in allowed


def over_rate_limit(s: Session, rt: PartnershipRuntime, sender: str | None, arrived: datetime) -> bool:
    """More than the hourly limit from one sender: counted by when the mailbox received each
    message, in the hour up to this one's arrival (`arrived`), so mail read in one go after a
    day down, or an old mailbox imported, is judged as it came in, not as a flood. Senders are
    stored lower-cased (apply_message): a plain equality, a range of ix_inbound_sender_arrival."""
    if not sender:
        return False
    count = s.scalar(select(func.count()).select_from(InboundMessage).where(
        InboundMessage.partnership == rt.prefix, InboundMessage.sender == sender.lower(),
        InboundMessage.arrived_at > arrived - timedelta(hours=1), InboundMessage.arrived_at <= arrived))
    return (count or 0) > rt.app.config.daemon.sender_messages_per_hour


def own_mail(rt: PartnershipRuntime) -> OwnMail:
    """What mailflow's own mail looks like: from any partnership's address, with a Message-ID
    of the configured domain, or carrying a valid X-Mailflow-Signature. Such mail never acts."""
    app = rt.app
    return OwnMail(addresses=[p.address for p in app.config.partnerships],
                   message_id_domains=[app.config.message_id_domain],
                   signature_valid=lambda msgid, sig: verify_message_id(msgid, sig, app.secret_key))


def auth_failures(auth: dict[str, str]) -> list[str]:
    """The failing results that make a message untrusted. DMARC (and Exchange's composite
    `compauth`) is the verdict when the receiving server gave one: a forwarded reply fails SPF
    and a second DKIM signature may fail while the aligned one passes, and those are genuine.
    Without a DMARC/compauth verdict, an SPF or DKIM failure counts."""
    results = {k: v.lower() for k, v in auth.items()}
    decisive = [k for k in ("dmarc", "compauth") if results.get(k) in _FAILING | {"pass", "softpass"}]
    methods = decisive or ["spf", "dkim"]
    return [f"{k}={results[k]}" for k in methods if results.get(k) in _FAILING]


def verify_reply(s: Session, rt: PartnershipRuntime, parsed: ParsedMessage, case: Case,
                 now: datetime, *, rate_checked: bool = False) -> Verdict:
    """Whether a reply may act, and why not. `rate_checked`: the caller has already held mail over
    the sender's hourly limit (apply_message does), so the count is not run twice."""
    verdict = Verdict(tied_by=tied_by(s, rt, parsed, case, now))
    if verdict.tied_by is None:
        why = token_problem(s, rt, parsed, case, now) if parsed.reply_token else None
        verdict.reasons.append("not tied to the case: it answers no message mailflow sent for it and "
                               "carries no valid reply token (a subject tag alone is not enough)"
                               + (f"; {why}" if why else ""))
    if parsed.sender_problem:
        verdict.reasons.append(f"no single sender address ({parsed.sender_problem})")
    elif not sender_allowed(rt, case, parsed.from_addr):
        verdict.reasons.append("the sender is not a participant, a contact at the current stage or "
                               "the business team")
    failed = auth_failures(parsed.auth)
    if failed:
        verdict.reasons.append("sender authentication failed (" + ", ".join(failed) + ")")
    if parsed.automated:
        verdict.reasons.append("an automatic message (auto-reply, bulk or list mail)")
    if not rate_checked and over_rate_limit(s, rt, parsed.from_addr, now):   # arriving now
        verdict.reasons.append("too many messages from this sender in the last hour")
    return verdict
