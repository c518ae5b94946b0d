"""Reply tokens carry the case's stage and an expiry, signed: an expired token cannot act, and a
token from an earlier stage acts only for someone still involved in the case. Tokens of the first
format (no stage, no expiry) still in people's mailboxes act for current participants only, and
only for [daemon] reply_token_days after mailflow last sent them."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes, policy

from sqlalchemy import select

from mailflow.core.references import read_token, sign_legacy_token
from mailflow.db.models import Case, OutboxMessage
from mailflow.pipeline import cases
from mailflow.pipeline.cases import Actor
from tests.engine.conftest import ASC_MANAGER, BUSINESS, RAISER, Harness


def _token_sent_to(h: Harness, ref: str, who: str) -> str:
    """The token in the Reply-To of the latest notice `who` received about the case."""
    reply_to = message_from_bytes(h.last_sent(ref, who).raw, policy=policy.SMTP)["Reply-To"]
    return str(reply_to).split("+", 1)[1].split("@", 1)[0]


def _escalate(h: Harness, ref: str, times: int) -> None:
    for _ in range(times):
        with h.app.db.transaction() as s:
            case = s.scalars(select(Case).where(Case.reference == ref)).one()
            cases.escalate(s, h.rt, case, Actor(BUSINESS), h.clock.now(), "test", clock_start=h.clock.now())


def _refusal(h: Harness, ref: str) -> str:
    return " ".join(h.events(ref, "unverified_reply")[-1].detail["reasons"])


def test_the_token_mailflow_sends_names_the_stage_and_the_last_day(h: Harness) -> None:
    ref = h.open_case()
    claims = read_token(_token_sent_to(h, ref, ASC_MANAGER), h.app.secret_key)
    assert claims is not None and claims.reference == ref and claims.stage == 1
    assert claims.expires == (h.clock.now() + timedelta(days=60)).date()


def test_a_token_acts_until_it_expires(h_any: Harness) -> None:
    h = h_any
    start = h.clock.now()
    ref, late = h.open_case(), h.open_case()
    token, late_token = _token_sent_to(h, ref, ASC_MANAGER), _token_sent_to(h, late, ASC_MANAGER)
    h.clock.set(start + timedelta(days=60))
    h.reply(ref, ASC_MANAGER, "#resolved agreed", how="token", token=token)
    assert h.case(ref)["state"] == "resolved"
    h.clock.set(start + timedelta(days=61))
    before = h.snapshot(late)
    h.reply(late, ASC_MANAGER, "#resolved agreed", how="token", token=late_token)
    assert h.snapshot(late) == before
    assert "expired on" in _refusal(h, late)
    assert len(h.outbox(late, "unverified_reply")) == 1     # the business team is told, as for any


def test_a_stage_1_token_does_not_act_at_stage_3_for_a_stage_1_manager(h_any: Harness) -> None:
    h = h_any
    ref = h.open_case()
    token = _token_sent_to(h, ref, ASC_MANAGER)
    _escalate(h, ref, 2)
    assert h.case(ref)["stage"] == 3
    before = h.snapshot(ref)
    h.reply(ref, ASC_MANAGER, "#resolved agreed between us", how="token", token=token)
    assert h.snapshot(ref) == before
    assert "from Stage 1, the case is at Stage 3" in _refusal(h, ref)
    # The raiser is involved at every stage: the same token still acts for them.
    h.reply(ref, RAISER, "#resolved agreed at the Stage 3 meeting", how="token", token=token)
    assert h.case(ref)["state"] == "resolved"


def _as_if_sent_before_the_upgrade(h: Harness, ref: str, who: str) -> str:
    """Put a first-format token in the Reply-To of the latest notice `who` received, as mailflow
    sent it before tokens carried a stage and an expiry; returns that token."""
    legacy = sign_legacy_token(ref, h.app.secret_key)
    row_id, current = h.last_sent(ref, who).id, _token_sent_to(h, ref, who)
    with h.app.db.transaction() as s:
        row = s.get(OutboxMessage, row_id)
        assert row is not None and current.encode() in row.raw
        row.raw = row.raw.replace(current.encode(), legacy.encode())
    return legacy


def test_an_old_format_token_acts_for_a_participant_while_recently_sent(h_any: Harness) -> None:
    h = h_any
    ref = h.open_case()
    legacy = _as_if_sent_before_the_upgrade(h, ref, ASC_MANAGER)
    h.clock.advance(timedelta(days=59))
    h.reply(ref, ASC_MANAGER, "#resolved agreed", how="token", token=legacy)
    assert h.case(ref)["state"] == "resolved"


def test_an_old_format_token_expires_after_mailflow_last_sent_it(h_any: Harness) -> None:
    h = h_any
    ref = h.open_case()
    legacy = _as_if_sent_before_the_upgrade(h, ref, ASC_MANAGER)
    h.clock.advance(timedelta(days=61))
    before = h.snapshot(ref)
    h.reply(ref, ASC_MANAGER, "#resolved agreed", how="token", token=legacy)
    assert h.snapshot(ref) == before
    assert "old format" in _refusal(h, ref) and "60 days" in _refusal(h, ref)


def test_an_old_format_token_mailflow_never_sent_does_not_act(h: Harness) -> None:
    ref = h.open_case()
    before = h.snapshot(ref)
    h.reply(ref, ASC_MANAGER, "#resolved agreed", how="token", token=sign_legacy_token(ref, h.app.secret_key))
    assert h.snapshot(ref) == before
    assert "old format" in _refusal(h, ref)


def test_an_old_format_token_does_not_act_for_an_earlier_stages_manager(h: Harness) -> None:
    ref = h.open_case()
    legacy = _as_if_sent_before_the_upgrade(h, ref, ASC_MANAGER)
    _escalate(h, ref, 1)
    before = h.snapshot(ref)
    h.reply(ref, ASC_MANAGER, "#resolved agreed", how="token", token=legacy)
    assert h.snapshot(ref) == before
    assert "unknown stage (old format)" in _refusal(h, ref)
