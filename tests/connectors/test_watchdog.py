from datetime import UTC, datetime, timedelta

from mailflow.core.health import Thresholds, check_health

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
M = timedelta(minutes=1)


def codes(**kw) -> list[str]:
    return [p.code for p in check_health(now=NOW, **kw)]


def test_healthy() -> None:
    assert codes(last_mailbox_read=NOW - 5 * M, oldest_unsent=None) == []
    assert codes(last_mailbox_read=NOW - 29 * M, oldest_unsent=NOW - 29 * M) == []


def test_stale_mailbox_and_stuck_outbox() -> None:
    problems = check_health(now=NOW, last_mailbox_read=NOW - 3 * 60 * M,
                            oldest_unsent=NOW - 45 * M, mailbox="sab@council.gov.uk")
    assert [p.code for p in problems] == ["mailbox-stale", "outbox-stuck"]
    assert "sab@council.gov.uk was last read successfully 3 hours ago" in problems[0].message
    assert "45 minutes ago" in problems[1].message


def test_never_read_counts_from_start() -> None:
    assert codes(last_mailbox_read=None, oldest_unsent=None, started=NOW - 10 * M) == []
    assert codes(last_mailbox_read=None, oldest_unsent=None,
                 started=NOW - 31 * M) == ["mailbox-never-read"]


def test_thresholds_are_settings() -> None:
    t = Thresholds(mailbox_stale=5 * M, outbox_stale=2 * 60 * M)
    assert codes(last_mailbox_read=NOW - 6 * M, oldest_unsent=NOW - 90 * M,
                 thresholds=t) == ["mailbox-stale"]
    assert "days ago" in check_health(now=NOW, last_mailbox_read=NOW - 72 * 60 * M,
                                      oldest_unsent=None)[0].message
