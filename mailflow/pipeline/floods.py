"""Floods cost nothing. Over the per-sender limit ([daemon] sender_messages_per_hour) a message is
held in quarantine with `HELD_REASON` and neither acts nor is answered, and the business team
gets one summary per sender per clock hour at most, instead of a quarantine notice for each.

Exactly once across workers without a ledger row (the ledger's key is per case): the summary's
Message-ID is derived from (partnership, keyed hash of the sender, UTC hour), and the outbox's
unique Message-ID lets only one insert win; a loser's conflict means "already told". The hash
is keyed with the secret, so the Message-ID the business team receives does not reveal the
address to anyone who guesses it, and nothing here logs the address."""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailflow.db.models import InboundMessage, OutboxMessage
from mailflow.pipeline.notices import business_team
from mailflow.pipeline.outbox import queue_mail

if TYPE_CHECKING:
    from mailflow.app import PartnershipRuntime

log = logging.getLogger(__name__)

HELD_REASON = "held: too many messages from this sender within an hour of its arrival"


def is_flood_hold(inbound: InboundMessage) -> bool:
    return inbound.reason == HELD_REASON


def summary_message_id(rt: PartnershipRuntime, sender: str, now: datetime) -> str:
    """The one Message-ID a summary about `sender` can have in the hour that contains `now`."""
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    digest = hmac.new(rt.app.secret_key, b"flood-sender:" + sender.strip().lower().encode(),
                      hashlib.sha256).hexdigest()[:20]
    return f"<mailflow.flood.{rt.prefix}.{hour:%Y%m%d%H}.{digest}@{rt.app.config.message_id_domain}>"


def tell_business_team_once(s: Session, rt: PartnershipRuntime, inbound: InboundMessage,
                            now: datetime) -> bool:
    """Queue the hour's summary about the inbound message's sender unless it is already queued
    (by this worker or another); True when this call queued it."""
    if not inbound.sender:
        return False
    message_id = summary_message_id(rt, inbound.sender, now)
    if s.scalar(select(OutboxMessage.id).where(OutboxMessage.message_id == message_id)) is not None:
        return False
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    try:
        with s.begin_nested():
            row = queue_mail(s, rt, kind="flood_summary", to=business_team(rt), now=now,
                             message_id=message_id,
                             context={"inbound": inbound, "sender": inbound.sender, "now": now,
                                      "until": hour + timedelta(hours=1),
                                      "limit": rt.app.config.daemon.sender_messages_per_hour})
            s.flush()
    except IntegrityError:
        log.info("%s: flood summary for inbound #%s already queued by another worker", rt.prefix, inbound.id)
        return False
    if row is not None:
        log.info("%s: flood summary queued (inbound #%s)", rt.prefix, inbound.id)
    return row is not None
