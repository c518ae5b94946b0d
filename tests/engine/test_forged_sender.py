"""The sender is the single address in From, never a display name, comment, second address or a
Sender header (issue 11, item 1). Each forged `#withdraw` below answers the manager's own notice
(so it is tied to the case by thread) and carries the manager's address somewhere in its headers
other than as the one real From address: the case is never withdrawn, the text is kept as an
unverified note and the business team is told."""

from __future__ import annotations

import base64
import secrets

import pytest
from sqlalchemy import select

from mailflow.clock import parse_instant
from mailflow.db.models import Case
from mailflow.pipeline.notices import add_participants
from tests.engine.conftest import ASC_MANAGER, BUSINESS, RAISER, Harness

M = ASC_MANAGER
_DOMAIN = M.split("@")[1]
_ENCODED = "=?utf-8?b?" + base64.b64encode(M.encode()).decode() + "?="

# (id, the From/Sender header lines). The attacker's own address is unusual where that made the old
# parser fall back to "the first address-like text in the header" (the display name).
VARIANTS = [
    ("quoted-local-part", [f'From: "{M}" <"mallory x"@evil.example>']),
    ("dotless-domain", [f'From: "{M}" <mallory@localhost>']),
    ("idn-domain", [f'From: "{M}" <mallory@évil.example>']),
    ("encoded-word-display-name", [f"From: {_ENCODED} <mallory@localhost>"]),
    ("display-name-is-the-manager", [f'From: "{M}" <mallory@evil.example>']),
    ("two-from-manager-first", [f"From: {M}, mallory@evil.example"]),
    ("two-from-attacker-first", [f"From: mallory@evil.example, {M}"]),
    ("no-from-sender-is-manager", [f"Sender: {M}"]),
    ("group-syntax", [f"From: managers: {M};"]),
    ("comment-holds-the-address", [f"From: mallory@localhost ({M})"]),
    ("angle-address-in-display-name", [f"From: Manager <{M}> <mallory@evil>"]),
    ("trailing-garbage", [f"From: Mallory <mallory@localhost> {M}"]),
    ("obsolete-route", [f'From: "{M}" <@{_DOMAIN}:mallory@evil>']),
    ("empty-from-sender-is-manager", ["From: ", f"Sender: {M}"]),
]


def _raw(h: Harness, ref: str, from_lines: list[str], body: str, in_reply_to: str) -> bytes:
    head = [
        *from_lines,
        "To: safeguarding@ssp.example.org",
        f"Subject: Re: [{ref}] Stage 1",
        "Date: Mon, 21 Dec 2026 10:30:00 +0000",
        f"Message-ID: <{secrets.token_hex(8)}@example.org>",
        f"In-Reply-To: {in_reply_to}",
        f"References: {in_reply_to}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    return ("\r\n".join(head) + "\r\n\r\n" + body + "\r\n").encode("utf-8")


@pytest.mark.parametrize("from_lines", [v[1] for v in VARIANTS], ids=[v[0] for v in VARIANTS])
def test_a_forged_sender_cannot_withdraw(h_any: Harness, from_lines: list[str]) -> None:
    h = h_any   # on SQLite and PostgreSQL
    ref = h.open_case()
    assert M in h.case(ref)["participants"]
    before = h.snapshot(ref)
    thread = h.last_sent(ref, M).message_id
    h.clock.set(parse_instant("2026-12-21T10:30:00"))
    h.ingest(_raw(h, ref, from_lines, "#withdraw no longer needed", thread))

    assert h.case(ref)["state"] == "open"
    assert h.snapshot(ref) == before
    assert h.events(ref, "withdrawn") == []
    [note] = h.events(ref, "unverified_note")
    assert "#withdraw" in note.detail["text"]
    [flag] = h.events(ref, "unverified_reply")
    assert any("sender" in r for r in flag.detail["reasons"]), flag.detail["reasons"]
    [alert] = h.outbox(ref, "unverified_reply")
    assert alert.recipients == [BUSINESS]


def test_the_manager_with_a_plain_from_still_withdraws(h: Harness) -> None:
    """The control: the same message with an ordinary From is obeyed."""
    ref = h.open_case()
    thread = h.last_sent(ref, M).message_id
    h.ingest(_raw(h, ref, [f'From: "Priya Examplewood" <{M}>'], "#withdraw no longer needed", thread))
    assert h.case(ref)["state"] == "withdrawn"


@pytest.mark.parametrize("raiser", ['"jo example"@gwh.nhs.example.org', "jo.example@gwh-nhs.exämple.org"],
                         ids=["quoted-local-part", "idn-domain"])
def test_an_unusual_but_unambiguous_address_of_a_participant_still_acts(h: Harness, raiser: str) -> None:
    ref = h.open_case(sender=RAISER)
    thread = h.last_sent(ref, RAISER).message_id
    # The raiser writes from their other (unusual) address, which the business team added.
    with h.app.db.transaction() as s:
        case = s.scalars(select(Case).where(Case.reference == ref)).one()
        add_participants(s, case, [raiser], "raiser", "raiser", None, None)
    outcome, reason = h.ingest(_raw(h, ref, [f"From: Jo Example <{raiser}>"], "#withdraw no longer needed", thread))
    assert h.case(ref)["state"] == "withdrawn", (reason, [e.detail for e in h.events(ref)][-3:])
