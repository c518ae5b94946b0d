"""Loops cost nothing: mailflow knows its own mail come back (by its From or envelope address,
its Message-ID domain, or its signed X-Mailflow-Signature) even when a relay stripped
Auto-Submitted and X-Auto-Response-Suppress, and an out-of-office known only by its subject is
automatic. Neither is ever answered or acted on."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest
from sqlalchemy import select

from mailflow.composer import SIGNATURE_HEADER
from mailflow.core.references import sign_message_id, verify_message_id
from mailflow.db.models import Event
from mailflow.sources.base import Outcome
from parsers import parse_message
from parsers.classify import OwnMail, own_mail_reason
from tests.conftest import make_message
from tests.engine.conftest import ADDRESS, ASC_MANAGER, BUSINESS, Harness

RELAY = "list-relay@relay.example.net"


def _relayed(raw: bytes, *, from_: str | None = None, message_id: str | None = None,
             signature: str | None | bool = True, return_path: str | None = None) -> bytes:
    """One of mailflow's own messages as a relay hands it back: the loop-safety headers
    stripped, and optionally the From, Message-ID, signature or envelope sender changed."""
    msg = message_from_bytes(raw, policy=policy.SMTP)
    del msg["Auto-Submitted"]
    del msg["X-Auto-Response-Suppress"]
    if from_ is not None:
        msg.replace_header("From", from_)
    if message_id is not None:
        msg.replace_header("Message-ID", message_id)
    if signature is not True:
        del msg[SIGNATURE_HEADER]
        if isinstance(signature, str):
            msg[SIGNATURE_HEADER] = signature
    if return_path is not None:
        msg["Return-Path"] = f"<{return_path}>"
    return msg.as_bytes()


def _own_mail_events(h: Harness) -> list[Event]:
    with h.app.db.transaction() as s:
        rows = list(s.scalars(select(Event).where(Event.action == "own_mail")))
        s.expunge_all()
        return rows


def test_outgoing_mail_is_signed(h: Harness) -> None:
    ref = h.open_case()
    for row in h.outbox(ref):
        msg = message_from_bytes(row.raw, policy=policy.SMTP)
        assert verify_message_id(msg["Message-ID"], msg[SIGNATURE_HEADER], h.app.secret_key)
        assert not verify_message_id(msg["Message-ID"], msg[SIGNATURE_HEADER], b"another key")


def _variants(h: Harness, raw: bytes) -> dict[str, bytes]:
    foreign_id = "<7a1c0e55@relay.example.net>"
    # Sent when the installation's Message-ID domain was another (the config changed since).
    old_id = "<SSP-2026-0001.3f9a1c2b7d5e@old-mailflow.example>"
    return {
        "From": _relayed(raw),
        "envelope sender": _relayed(raw, from_=RELAY, message_id=foreign_id, signature=None,
                                    return_path=ADDRESS),
        "plus-addressed From": _relayed(raw, from_="safeguarding+SSP-2026-0001.1.20270219.00@ssp.example.org",
                                        message_id=foreign_id, signature=None),
        "Message-ID domain": _relayed(raw, from_=RELAY, signature=None),
        "signature": _relayed(raw, from_=RELAY, message_id=old_id,
                              signature=sign_message_id(old_id, h.app.secret_key)),
    }


@pytest.mark.parametrize("known_by", ["From", "envelope sender", "plus-addressed From", "Message-ID domain",
                                      "signature"])
def test_own_mail_come_back_is_never_answered_or_acted_on(h_any: Harness, known_by: str) -> None:
    h = h_any
    ref = h.open_case()
    # A notice whose body carries mailflow's help (command lines) and the case's thread.
    raw = h.last_sent(ref, ASC_MANAGER).raw
    before, outbox = h.snapshot(ref), len(h.outbox())
    outcome, reason = h.ingest(_variants(h, raw)[known_by])
    assert outcome == Outcome.PROCESSED and reason is not None and reason.startswith("mailflow's own mail")
    assert len(h.outbox()) == outbox                       # nothing answered, nobody told
    assert h.snapshot(ref) == before                       # nothing acted on
    assert [e.action for e in h.events(ref)][-1] != "unverified_note"
    assert len(_own_mail_events(h)) == 1


def test_a_forged_signature_or_a_strangers_mail_is_not_taken_for_ours(h: Harness) -> None:
    own = OwnMail(addresses=[ADDRESS], message_id_domains=["mailflow.test"],
                  signature_valid=lambda msgid, sig: verify_message_id(msgid, sig, h.app.secret_key))
    forged = make_message(RELAY, "Re: [SSP-2026-0001] Stage 1", "#resolved",
                          message_id="<1@relay.example.net>", headers={SIGNATURE_HEADER: "0" * 32})
    assert own_mail_reason(parse_message(forged), own) is None
    genuine = make_message(ASC_MANAGER, "Re: [SSP-2026-0001] Stage 1", "#resolved agreed",
                           in_reply_to="<SSP-2026-0001.3f9a1c2b7d5e@mailflow.test>")
    assert own_mail_reason(parse_message(genuine), own) is None   # answering our mail is not our mail


OOO_SUBJECTS = [
    "Automatic reply: [SSP-2026-0001] Stage 1",
    "Out of Office: [SSP-2026-0001] Stage 1",
    "Abwesenheitsnotiz: [SSP-2026-0001] Stage 1",
    "Automatische Antwort: [SSP-2026-0001] Stage 1",
    "Réponse automatique : [SSP-2026-0001] Stage 1",
    "Absence du bureau: [SSP-2026-0001] Stage 1",
    "Respuesta automática: [SSP-2026-0001] Stage 1",
    "Fuera de la oficina: [SSP-2026-0001] Stage 1",
    "Risposta automatica: [SSP-2026-0001] Stage 1",
    "Automatisch antwoord: [SSP-2026-0001] Stage 1",
    "Autosvar: [SSP-2026-0001] Stage 1",
    "Automatisk svar: [SSP-2026-0001] Stage 1",
    "Automaattinen vastaus: [SSP-2026-0001] Stage 1",
    "Resposta automática: [SSP-2026-0001] Stage 1",
    "Odpowiedź automatyczna: [SSP-2026-0001] Stage 1",
    "Automatická odpověď: [SSP-2026-0001] Stage 1",
    "Automatikus válasz: [SSP-2026-0001] Stage 1",
    "Răspuns automat: [SSP-2026-0001] Stage 1",
    "Αυτόματη απάντηση: [SSP-2026-0001] Stage 1",
    "Автоматический ответ: [SSP-2026-0001] Stage 1",
    "Otomatik yanıt: [SSP-2026-0001] Stage 1",
    "自动回复: [SSP-2026-0001] Stage 1",
    "[EXTERNAL] Automatic reply: [SSP-2026-0001] Stage 1",
    "[secure] Out of office: [SSP-2026-0001] Stage 1",
]


@pytest.mark.parametrize("subject", OOO_SUBJECTS)
def test_out_of_office_known_only_by_its_subject_is_automatic(subject: str) -> None:
    raw = make_message(ASC_MANAGER, subject, "I am out of the office until Monday 4 January.\n\n#note back soon",
                       in_reply_to="<SSP-2026-0001.3f9a1c2b7d5e@mailflow.test>")
    parsed = parse_message(raw)
    assert (parsed.kind, parsed.automated, parsed.commands) == ("auto_reply", True, [])


@pytest.mark.parametrize("subject", ["Re: Automatic reply: [SSP-2026-0001] Stage 1", "Outcome agreed",
                                     "Automatically closed? [SSP-2026-0001]", "Re: [SSP-2026-0001] Stage 1"])
def test_a_persons_reply_is_not_an_out_of_office(subject: str) -> None:
    raw = make_message(ASC_MANAGER, subject, "#note spoke to the ward",
                       in_reply_to="<SSP-2026-0001.3f9a1c2b7d5e@mailflow.test>")
    assert parse_message(raw).kind == "reply"


def test_an_out_of_office_without_its_headers_is_kept_but_never_answered(h_any: Harness) -> None:
    h = h_any
    ref = h.open_case()
    before, outbox = h.snapshot(ref), len(h.outbox())
    h.reply(ref, ASC_MANAGER, "I am out of the office until 4 January.\n\n#escalate urgent matters to my deputy",
            subject=f"Automatic reply: [{ref}] Stage 1")
    assert h.snapshot(ref) == before and len(h.outbox()) == outbox
    assert [e.action for e in h.events(ref)][-2:] == ["unverified_note", "auto_reply"]
    assert not any(BUSINESS in r.recipients for r in h.outbox()[outbox:])
