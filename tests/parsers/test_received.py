"""When a loose .eml file reached its mailbox: the topmost Received line's date, never the Date header."""

from __future__ import annotations

from datetime import UTC, datetime

from parsers.received import received_stamp

# As Exchange Online writes them: the newest (the last hop, the organisation's own server) on top,
# folded over several lines; the Date header (the sender's clock) a day out.
EXCHANGE = (b"Received: from AM9PR01MB1234.eurprd01.prod.exchangelabs.com (2603:10a6:20b:1::1)\r\n"
            b" by DB9PR01MB5678.eurprd01.prod.exchangelabs.com with HTTPS; Thu, 3 Dec 2026\r\n"
            b" 14:15:04 +0000\r\n"
            b"Received: from mail.gwh.nhs.example.org (192.0.2.10) by relay.example.net;\r\n"
            b" Thu, 3 Dec 2026 14:14:58 +0000\r\n"
            b"From: Jo Example <jo.example@gwh.nhs.example.org>\r\n"
            b"Date: Wed, 2 Dec 2026 09:00:00 +0000\r\n"
            b"Subject: Escalation form\r\n\r\nName of adult: Ada Testperson\r\n")


def test_the_topmost_received_line_says_when_it_arrived() -> None:
    assert received_stamp(EXCHANGE) == datetime(2026, 12, 3, 14, 15, 4, tzinfo=UTC)
    # Another zone, on LF line ends: the same instant in UTC.
    other = b"Received: by mx.example.org; Thu, 3 Dec 2026 09:15:04 -0500\nSubject: x\n\nbody\n"
    assert received_stamp(other) == datetime(2026, 12, 3, 14, 15, 4, tzinfo=UTC)


def test_no_received_line_or_an_unreadable_one_says_nothing() -> None:
    saved_draft = b"From: a@example.org\r\nDate: Thu, 3 Dec 2026 14:15:04 +0000\r\n\r\nbody\r\n"
    assert received_stamp(saved_draft) is None                                # the Date header is not used
    assert received_stamp(b"Received: from somewhere\r\n\r\nbody") is None      # no date after a ';'
    assert received_stamp(b"Received: x; not a date at all\r\n\r\nbody") is None
    assert received_stamp(b"Received: x; Thu, 3 Dec 2026 14:15:04 +0000") is None   # no end of headers
    assert received_stamp(b"") is None


def test_a_header_block_past_the_bound_is_not_searched() -> None:
    huge = b"X-Filler: " + b"a" * 300_000 + b"\r\n" + EXCHANGE
    assert received_stamp(huge) is None
