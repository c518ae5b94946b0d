"""Recipients are people, not strings: one per address in To, Cc and the SMTP envelope."""

from __future__ import annotations

from datetime import UTC, datetime

from mailflow.addresses import address_of, unique_addresses
from mailflow.composer import Envelope, compose
from mailflow.rendering import RenderedMail


def test_addresses_are_compared_by_address_not_spelling() -> None:
    assert unique_addresses(["Business Team <bt@x.org>", "BT@x.org", "bt@X.ORG", "not an address", "o@x.org"]) \
        == ["bt@x.org", "o@x.org"]
    assert address_of('"Examplewood, Priya" <priya@x.org>') == "priya@x.org"


def test_to_and_cc_hold_each_person_once_and_the_envelope_too() -> None:
    env = Envelope(from_addr="safeguarding@ssp.example.org",
                   to=["Business Team <bt@x.org>", "BT@x.org"],
                   cc=["bt@X.org", "Other Person <o@x.org>", "O@x.org"], message_id="<m@x>")
    assert env.recipients == ("bt@x.org", "o@x.org")
    msg = compose(RenderedMail("[SSP-2026-0001] s", "t", "<p>h</p>"), env, datetime(2026, 12, 21, tzinfo=UTC))
    assert [a.addr_spec for a in msg["To"].addresses] == ["bt@x.org"]
    assert msg["To"].addresses[0].display_name == "Business Team"
    assert [a.addr_spec for a in msg["Cc"].addresses] == ["o@x.org"]


def test_a_display_name_with_a_comma_stays_one_recipient() -> None:
    env = Envelope(from_addr="a@x.org", to=['"Examplewood, Priya" <priya@x.org>'], message_id="<m@x>")
    msg = compose(RenderedMail("s", "t", "h"), env, datetime(2026, 12, 21, tzinfo=UTC))
    assert [a.addr_spec for a in msg["To"].addresses] == ["priya@x.org"] and env.recipients == ("priya@x.org",)
