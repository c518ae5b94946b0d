"""The quarantine review in the console (admin): list, show (an audit read), release refused with
the reason, discard with a reason; each recorded with the signed-in person."""

from __future__ import annotations

from sqlalchemy import select

from mailflow.db.models import Event, InboundMessage
from mailflow.sources.base import Outcome
from tests.conftest import make_message
from tests.engine.conftest import Harness
from tests.web.conftest import Console

ADMIN, TEAM = "ash.admin@ssp.example.org", "jo.officer@ssp.example.org"


def _events(console: Console, action: str) -> list[Event]:
    with console.app.db.transaction() as s:
        rows = list(s.scalars(select(Event).where(Event.action == action).order_by(Event.id)))
        s.expunge_all()
        return rows


def test_an_admin_reviews_and_discards_a_quarantined_message(console: Console, harness: Harness) -> None:
    outcome, _ = harness.ingest(make_message("jo.example@gwh.nhs.example.org", "x" * 20_000, "a body"))
    assert outcome == Outcome.QUARANTINED
    with console.app.db.transaction() as s:
        held = s.scalars(select(InboundMessage.id).where(InboundMessage.outcome == "quarantined")).one()
    console.add_user(TEAM, "team")
    assert console.sign_in(TEAM).get(f"/quarantine/{held}").status_code == 403
    console.add_user(ADMIN, "admin")
    c = console.sign_in(ADMIN)
    listing = c.get("/quarantine").text
    assert f"/quarantine/{held}" in listing and "a header field longer than" in listing
    page = c.get(f"/quarantine/{held}")
    assert page.status_code == 200 and "Discard" in page.text
    assert [(e.actor, e.inbound_id) for e in _events(console, "viewed")] == [(f"web:{ADMIN}", held)]

    console.post(c, f"/quarantine/{held}/release", {}, f"/quarantine/{held}")
    assert "Not released" in c.get(f"/quarantine/{held}").text
    assert [e.actor for e in _events(console, "quarantine_release_failed")] == [f"web:{ADMIN}"]

    r = console.post(c, f"/quarantine/{held}/discard", {"reason": ""}, f"/quarantine/{held}")
    assert r.status_code == 303 and _events(console, "quarantine_discarded") == []
    console.post(c, f"/quarantine/{held}/discard", {"reason": "spam, not a form"}, f"/quarantine/{held}")
    [discarded] = _events(console, "quarantine_discarded")
    assert discarded.actor == f"web:{ADMIN}" and discarded.detail["reason"] == "spam, not a form"
    assert "Nothing is quarantined" in c.get("/quarantine").text
