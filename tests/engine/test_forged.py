"""Forged or untrustworthy replies change nothing: the case's state, stage and deadlines stay as
they were, the text is kept as an unverified note, and the business team is told (except for
automatic mail, which is never answered)."""

from __future__ import annotations

import pytest

from tests.engine.conftest import ASC_MANAGER, BUSINESS, RAISER, Harness

OUTSIDER = "mallory.outsider@example.net"


def _assert_unchanged_and_reported(h: Harness, ref: str, before, *, told: bool, reason: str) -> None:
    assert h.snapshot(ref) == before
    notes = h.events(ref, "unverified_note")
    assert len(notes) == 1, [e.action for e in h.events(ref)]
    assert "#resolved" in notes[0].detail["text"] or "#escalate" in notes[0].detail["text"]
    [flag] = h.events(ref, "unverified_reply")
    assert any(reason in r for r in flag.detail["reasons"]), flag.detail["reasons"]
    alerts = h.outbox(ref, "unverified_reply")
    if told:
        assert len(alerts) == 1 and alerts[0].recipients == [BUSINESS]
    else:
        assert alerts == []
    assert h.events(ref, "resolved") == [] and h.events(ref, "escalated") == []
    assert h.outbox(ref, "confirmation_request") == []


def test_wrong_sender_on_the_thread(h_any):
    h = h_any
    ref = h.open_case()
    before = h.snapshot(ref)
    thread = h.last_sent(ref, ASC_MANAGER).message_id
    from tests.conftest import make_message

    h.ingest(make_message(OUTSIDER, f"Re: [{ref}] Stage 1", "#resolved all sorted", in_reply_to=thread))
    _assert_unchanged_and_reported(h, ref, before, told=True, reason="not a participant")


@pytest.mark.parametrize("header", [
    "mx.ssp.example.org; spf=pass smtp.mailfrom=asc.swindon.example.org; dkim=pass; dmarc=fail "
    "(p=reject dis=none) header.from=asc.swindon.example.org",
    # Exchange Online: no authserv-id before the first method.
    "spf=fail (sender IP is 203.0.113.9) smtp.mailfrom=asc.swindon.example.org; dkim=none (message "
    "not signed) header.d=none;dmarc=fail action=oreject header.from=asc.swindon.example.org;compauth=fail reason=000",
])
def test_dmarc_failure(h, header):
    ref = h.open_case()
    before = h.snapshot(ref)
    h.reply(ref, ASC_MANAGER, "#resolved all sorted", headers={"Authentication-Results": header})
    _assert_unchanged_and_reported(h, ref, before, told=True, reason="authentication failed")
    assert "dmarc=fail" in " ".join(h.events(ref, "unverified_reply")[0].detail["reasons"])


def test_subject_tag_without_thread_or_token(h_any):
    h = h_any
    ref = h.open_case()
    before = h.snapshot(ref)
    h.reply(ref, ASC_MANAGER, "#resolved all sorted", how="tag")
    _assert_unchanged_and_reported(h, ref, before, told=True, reason="not tied to the case")


def test_token_of_another_case_does_not_tie(h):
    ref = h.open_case()
    other = h.open_case()
    before = h.snapshot(ref)
    from tests.conftest import make_message

    to = f"safeguarding+{h.token(other)}@ssp.example.org"
    h.ingest(make_message(ASC_MANAGER, f"Re: [{ref}] Stage 1", "#resolved all sorted", to=to))
    _assert_unchanged_and_reported(h, ref, before, told=True, reason="not tied to the case")
    assert h.case(other)["state"] == "open"


def test_out_of_office_with_a_command_is_not_answered(h):
    ref = h.open_case()
    before = h.snapshot(ref)
    outbox = len(h.outbox())
    h.reply(ref, ASC_MANAGER, "I am out of the office until 4 January.\n#resolved",
            headers={"Auto-Submitted": "auto-replied"})
    assert h.snapshot(ref) == before
    assert len(h.outbox()) == outbox   # nobody is answered, the business team is not mailed
    notes = h.events(ref, "unverified_note")
    assert len(notes) == 1 and "out of the office" in notes[0].detail["text"]
    assert h.events(ref, "resolved") == []


def test_participant_of_another_case_using_this_cases_subject(h):
    mine = h.open_case(other_agency="Wiltshire Police")
    theirs = h.open_case(other_agency="Meadowview Care Home")
    insider = "pat.sampleton@meadowview.example.org"   # a Stage 1 contact on the other case only
    assert insider in h.case(theirs)["participants"] and insider not in h.case(mine)["participants"]
    before = h.snapshot(mine)
    # Answers a notice they received for their own case, with this case's reference in the subject.
    from tests.conftest import make_message

    thread = h.last_sent(theirs, insider).message_id
    h.ingest(make_message(insider, f"Re: [{mine}] Stage 1", "#escalate", in_reply_to=thread))
    assert h.snapshot(mine) == before
    assert h.case(theirs)["stage"] == 1
    [flag] = h.events(mine, "unverified_reply")
    assert len(flag.detail["reasons"]) == 2   # not tied, and not a participant here
    assert len(h.outbox(mine, "unverified_reply")) == 1
    assert len(h.events(mine, "unverified_note")) == 1


def test_a_genuine_reply_after_the_forgeries_still_works(h):
    ref = h.open_case()
    h.reply(ref, OUTSIDER, "#resolved", how="token")
    assert h.case(ref)["state"] == "open"
    h.reply(ref, RAISER, "#resolved agreed at the meeting")
    assert h.case(ref)["state"] == "resolved"


@pytest.mark.parametrize(("header", "trusted"), [
    ("mx.ssp.example.org; spf=fail smtp.mailfrom=forwarder.example.net; dkim=pass header.d=asc.swindon.example.org; "
     "dmarc=pass header.from=asc.swindon.example.org", True),          # forwarded: SPF fails, DMARC passes
    ("spf=pass; dkim=fail (body hash did not verify) header.d=relay.example.net; dkim=pass "
     "header.d=asc.swindon.example.org; dmarc=pass action=none header.from=asc.swindon.example.org;compauth=pass "
     "reason=100", True),                                              # Exchange: a second signature failed
    ("mx.ssp.example.org; spf=fail smtp.mailfrom=asc.swindon.example.org; dkim=none", False),   # no DMARC verdict
    ("spf=pass; dkim=pass; dmarc=pass; compauth=fail reason=601", False),                       # Exchange says no
    ("mx.ssp.example.org; spf=softfail; dkim=none; dmarc=none", False),
])
def test_authentication_verdict(h, header, trusted):
    ref = h.open_case()
    h.reply(ref, ASC_MANAGER, "#resolved agreed", headers={"Authentication-Results": header})
    assert (h.case(ref)["state"] == "resolved") is trusted
    assert bool(h.outbox(ref, "unverified_reply")) is not trusted
