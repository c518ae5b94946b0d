"""UK working-day arithmetic: table-driven cases and properties."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailflow.core.calendar import WorkingCalendar

UK = ZoneInfo("Europe/London")
ENG = WorkingCalendar("ENG")
WLS = WorkingCalendar("WLS")
SCT = WorkingCalendar("SCT")
NIR = WorkingCalendar("NIR")
CALS = {"ENG": ENG, "WLS": WLS, "SCT": SCT, "NIR": NIR}


def uk(y: int, mo: int, d: int, h: int = 10, mi: int = 0, s: int = 0) -> datetime:
    """A UK wall-clock instant (GMT or BST as the date says)."""
    return datetime(y, mo, d, h, mi, s, tzinfo=UK)


# --- what is a working day ---------------------------------------------------------------------

@pytest.mark.parametrize("nation, day, reason", [
    ("ENG", date(2026, 12, 19), "Saturday"),
    ("ENG", date(2026, 12, 20), "Sunday"),
    ("ENG", date(2026, 12, 25), "Christmas Day"),
    ("ENG", date(2026, 12, 26), "Saturday"),  # Boxing Day on a Saturday: the weekend is the reason
    ("ENG", date(2026, 12, 28), "Boxing Day (observed)"),
    ("ENG", date(2027, 1, 1), "New Year's Day"),
    ("ENG", date(2026, 4, 3), "Good Friday"),
    ("ENG", date(2026, 4, 6), "Easter Monday"),
    ("ENG", date(2026, 5, 4), "May Day"),
    ("ENG", date(2026, 5, 25), "Spring Bank Holiday"),
    ("ENG", date(2026, 8, 31), "Late Summer Bank Holiday"),
    ("ENG", date(2027, 12, 27), "Christmas Day (observed)"),
    ("ENG", date(2027, 12, 28), "Boxing Day (observed)"),
    ("ENG", date(2026, 12, 24), None),  # Christmas Eve is a working day
    ("ENG", date(2026, 12, 31), None),
    ("ENG", date(2026, 1, 2), None),
    ("ENG", date(2026, 6, 15), None),
    ("ENG", date(2026, 8, 3), None),
    ("ENG", date(2026, 11, 30), None),
    ("ENG", date(2026, 3, 17), None),
    ("WLS", date(2026, 4, 6), "Easter Monday"),
    ("WLS", date(2026, 8, 31), "Late Summer Bank Holiday"),
    ("SCT", date(2026, 1, 2), "New Year Holiday"),
    ("SCT", date(2027, 1, 4), "New Year Holiday (observed)"),
    ("SCT", date(2026, 4, 6), None),  # no Easter Monday in Scotland
    ("SCT", date(2026, 8, 3), "Summer Bank Holiday"),
    ("SCT", date(2026, 8, 31), None),
    ("SCT", date(2026, 11, 30), "Saint Andrew's Day"),
    ("SCT", date(2026, 6, 15), "Scotland's participation in the FIFA World Cup final"),
    ("NIR", date(2026, 3, 17), "Saint Patrick's Day"),
    ("NIR", date(2026, 7, 12), "Sunday"),
    ("NIR", date(2026, 7, 13), "Battle of the Boyne (observed)"),
    ("NIR", date(2026, 4, 6), "Easter Monday"),
])
def test_non_working_reason(nation: str, day: date, reason: str | None) -> None:
    cal = CALS[nation]
    assert cal.non_working_reason(day) == reason
    assert cal.is_working_day(day) is (reason is None)


def test_closures_are_not_working_days() -> None:
    cal = WorkingCalendar("ENG", closures=frozenset({date(2026, 12, 24), date(2026, 12, 26)}))
    assert cal.non_working_reason(date(2026, 12, 24)) == "closure"
    assert cal.non_working_reason(date(2026, 12, 26)) == "Saturday"
    assert cal.non_working_reason(date(2026, 12, 25)) == "Christmas Day"


@pytest.mark.parametrize("kwargs, message", [
    ({"nation": "UK"}, "nation"),
    ({"nation": "GB"}, "nation"),
    ({"nation": "ENG", "opens": time(18, 0)}, "opens"),
    ({"nation": "ENG", "tz": "Europe/Nowhere"}, "Nowhere"),
])
def test_invalid_calendar(kwargs: dict, message: str) -> None:
    with pytest.raises(Exception, match=message):
        WorkingCalendar(**kwargs)


# --- when an event is received -----------------------------------------------------------------

@pytest.mark.parametrize("instant, received", [
    (uk(2026, 11, 3, 10), date(2026, 11, 3)),  # working hours
    (uk(2026, 11, 3, 6, 30), date(2026, 11, 3)),  # before opening still counts that day
    (uk(2026, 11, 3, 17, 0), date(2026, 11, 3)),  # at close of business: that day
    (uk(2026, 11, 3, 17, 0, 1), date(2026, 11, 4)),  # one second after: the next working day
    (uk(2026, 11, 3, 23, 59), date(2026, 11, 4)),
    (uk(2026, 11, 6, 17, 30), date(2026, 11, 9)),  # Friday evening: Monday
    (uk(2026, 11, 7, 11, 0), date(2026, 11, 9)),  # Saturday: Monday
    (uk(2026, 11, 8, 11, 0), date(2026, 11, 9)),  # Sunday: Monday
    (uk(2026, 12, 24, 17, 30), date(2026, 12, 29)),  # Christmas Eve evening: the 29th
    (uk(2026, 12, 25, 9, 0), date(2026, 12, 29)),
    (uk(2026, 12, 31, 18, 0), date(2027, 1, 4)),
    (uk(2026, 4, 2, 18, 30), date(2026, 4, 7)),  # Maundy Thursday evening: after Easter Monday
    (uk(2026, 6, 13, 11, 0), date(2026, 6, 15)),
    # UTC instants: 16:30Z is 17:30 BST in summer (after hours), 16:30 GMT in winter (in hours).
    (datetime(2026, 7, 1, 16, 30, tzinfo=UTC), date(2026, 7, 2)),
    (datetime(2026, 12, 1, 16, 30, tzinfo=UTC), date(2026, 12, 1)),
])
def test_received_day_eng(instant: datetime, received: date) -> None:
    assert ENG.received_day(instant) == received


@pytest.mark.parametrize("nation, instant, received", [
    ("SCT", uk(2026, 6, 12, 18), date(2026, 6, 16)),  # Scotland's one-off 15 June 2026
    ("ENG", uk(2026, 6, 12, 18), date(2026, 6, 15)),
    ("SCT", uk(2026, 4, 2, 18, 30), date(2026, 4, 6)),  # Easter Monday is a working day
    ("NIR", uk(2026, 3, 16, 18), date(2026, 3, 18)),  # St Patrick's Day
    ("NIR", uk(2026, 7, 10, 18), date(2026, 7, 14)),  # the Twelfth, observed on Monday 13th
])
def test_received_day_nations(nation: str, instant: datetime, received: date) -> None:
    assert CALS[nation].received_day(instant) == received


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        ENG.received_day(datetime(2026, 11, 3, 10, 0))
    with pytest.raises(ValueError, match="aware"):
        ENG.add_working_days(datetime(2026, 11, 3, 10, 0), 1)


# --- within N working days ---------------------------------------------------------------------

# (nation, start, n, due (UK local date; always 17:00), UTC offset in hours, skipped)
ADD_CASES = [
    # ordinary week, N = 0 is the same working day
    ("ENG", uk(2026, 11, 3, 10), 0, date(2026, 11, 3), 0, ()),
    ("ENG", uk(2026, 11, 3, 10), 1, date(2026, 11, 4), 0, ()),
    ("ENG", uk(2026, 11, 3, 10), 5, date(2026, 11, 10), 0, ()),
    ("ENG", uk(2026, 11, 3, 17, 0), 5, date(2026, 11, 10), 0, ()),
    ("ENG", uk(2026, 11, 3, 17, 1), 5, date(2026, 11, 11), 0, ()),
    ("ENG", uk(2026, 11, 3, 17, 1), 0, date(2026, 11, 4), 0, ()),
    # weekends
    ("ENG", uk(2026, 11, 6, 12), 1, date(2026, 11, 9), 0, ()),
    ("ENG", uk(2026, 11, 7, 12), 0, date(2026, 11, 9), 0, ()),
    ("ENG", uk(2026, 11, 8, 12), 5, date(2026, 11, 16), 0, ()),
    ("ENG", uk(2026, 11, 6, 12), 10, date(2026, 11, 20), 0, ()),
    # Christmas and New Year 2026/27 (Boxing Day falls on a Saturday: observed Monday 28th)
    ("ENG", uk(2026, 12, 21, 10), 5, date(2026, 12, 30), 0,
     ((date(2026, 12, 25), "Christmas Day"), (date(2026, 12, 28), "Boxing Day (observed)"))),
    ("ENG", uk(2026, 12, 24, 16), 1, date(2026, 12, 29), 0,
     ((date(2026, 12, 25), "Christmas Day"), (date(2026, 12, 28), "Boxing Day (observed)"))),
    ("ENG", uk(2026, 12, 30, 17), 5, date(2027, 1, 7), 0, ((date(2027, 1, 1), "New Year's Day"),)),
    ("ENG", uk(2026, 12, 25, 12), 0, date(2026, 12, 29), 0,
     ((date(2026, 12, 25), "Christmas Day"), (date(2026, 12, 28), "Boxing Day (observed)"))),
    # Christmas 2027: both days on the weekend, both observed on the Monday and Tuesday after
    ("ENG", uk(2027, 12, 24, 10), 1, date(2027, 12, 29), 0,
     ((date(2027, 12, 27), "Christmas Day (observed)"),
      (date(2027, 12, 28), "Boxing Day (observed)"))),
    # Easter 2026 and 2027 (BST)
    ("ENG", uk(2026, 4, 2, 10), 1, date(2026, 4, 7), 1,
     ((date(2026, 4, 3), "Good Friday"), (date(2026, 4, 6), "Easter Monday"))),
    ("ENG", uk(2026, 4, 2, 18, 30), 5, date(2026, 4, 14), 1,
     ((date(2026, 4, 3), "Good Friday"), (date(2026, 4, 6), "Easter Monday"))),
    ("ENG", uk(2027, 3, 24, 10), 5, date(2027, 4, 2), 1,
     ((date(2027, 3, 26), "Good Friday"), (date(2027, 3, 29), "Easter Monday"))),
    # spring clock change (Sunday 29 March 2026): due is 17:00 BST = 16:00 UTC
    ("ENG", uk(2026, 3, 25, 10), 5, date(2026, 4, 1), 1, ()),
    ("ENG", uk(2026, 3, 27, 12), 1, date(2026, 3, 30), 1, ()),
    ("ENG", uk(2026, 3, 27, 12), 0, date(2026, 3, 27), 0, ()),
    # autumn clock change (Sunday 25 October 2026): due is 17:00 GMT
    ("ENG", uk(2026, 10, 23, 16, 59), 5, date(2026, 10, 30), 0, ()),
    ("ENG", uk(2026, 10, 23, 16, 59), 0, date(2026, 10, 23), 1, ()),
    ("ENG", uk(2026, 10, 25, 1, 30), 1, date(2026, 10, 27), 0, ()),  # the repeated hour
    # May and August bank holidays
    ("ENG", uk(2026, 5, 1, 10), 1, date(2026, 5, 5), 1, ((date(2026, 5, 4), "May Day"),)),
    ("ENG", uk(2026, 8, 28, 10), 2, date(2026, 9, 2), 1,
     ((date(2026, 8, 31), "Late Summer Bank Holiday"),)),
    # Wales follows England's bank holidays
    ("WLS", uk(2026, 12, 21, 10), 5, date(2026, 12, 30), 0,
     ((date(2026, 12, 25), "Christmas Day"), (date(2026, 12, 28), "Boxing Day (observed)"))),
    # Scotland: 2 January, no Easter Monday, early August, St Andrew's Day, 15 June 2026
    ("SCT", uk(2026, 12, 29, 10), 5, date(2027, 1, 7), 0,
     ((date(2027, 1, 1), "New Year's Day"), (date(2027, 1, 4), "New Year Holiday (observed)"))),
    ("SCT", uk(2026, 4, 2, 10), 1, date(2026, 4, 6), 1, ((date(2026, 4, 3), "Good Friday"),)),
    ("SCT", uk(2026, 7, 31, 10), 1, date(2026, 8, 4), 1,
     ((date(2026, 8, 3), "Summer Bank Holiday"),)),
    ("SCT", uk(2026, 8, 28, 10), 1, date(2026, 8, 31), 1, ()),
    ("SCT", uk(2026, 11, 27, 10), 1, date(2026, 12, 1), 0,
     ((date(2026, 11, 30), "Saint Andrew's Day"),)),
    ("SCT", uk(2026, 6, 12, 10), 1, date(2026, 6, 16), 1,
     ((date(2026, 6, 15), "Scotland's participation in the FIFA World Cup final"),)),
    # Northern Ireland: St Patrick's Day, the Twelfth (observed), Easter Monday
    ("NIR", uk(2026, 3, 16, 10), 1, date(2026, 3, 18), 0,
     ((date(2026, 3, 17), "Saint Patrick's Day"),)),
    ("NIR", uk(2026, 7, 10, 10), 1, date(2026, 7, 14), 1,
     ((date(2026, 7, 13), "Battle of the Boyne (observed)"),)),
    ("NIR", uk(2026, 4, 2, 10), 1, date(2026, 4, 7), 1,
     ((date(2026, 4, 3), "Good Friday"), (date(2026, 4, 6), "Easter Monday"))),
    ("ENG", uk(2026, 3, 16, 10), 1, date(2026, 3, 17), 0, ()),
]


@pytest.mark.parametrize("nation, start, n, due_day, offset, skipped", ADD_CASES)
def test_add_working_days(nation: str, start: datetime, n: int, due_day: date, offset: int,
                          skipped: tuple) -> None:
    due = CALS[nation].add_working_days(start, n)
    assert due.at.tzinfo is not None and due.at.utcoffset() == timedelta(0)  # UTC-aware
    local = due.at.astimezone(UK)
    assert (local.date(), local.time()) == (due_day, time(17, 0))
    assert local.utcoffset() == timedelta(hours=offset)
    assert due.at == datetime.combine(due_day, time(17, 0), tzinfo=UK).astimezone(UTC)
    assert due.skipped == skipped
    assert due.received == CALS[nation].received_day(start)


def test_closures_are_skipped_and_reported() -> None:
    cal = WorkingCalendar("ENG", closures=frozenset({date(2026, 12, 24), date(2026, 12, 31)}))
    due = cal.add_working_days(uk(2026, 12, 23, 10), 3)
    assert due.at.astimezone(UK).date() == date(2027, 1, 4)  # 29th, 30th, 4th
    assert due.skipped == (
        (date(2026, 12, 24), "closure"), (date(2026, 12, 25), "Christmas Day"),
        (date(2026, 12, 28), "Boxing Day (observed)"), (date(2026, 12, 31), "closure"),
        (date(2027, 1, 1), "New Year's Day"),
    )


def test_close_of_business_is_a_setting() -> None:
    cal = WorkingCalendar("ENG", close_of_business=time(16, 0))
    assert cal.received_day(uk(2026, 11, 3, 16, 30)) == date(2026, 11, 4)
    due = cal.add_working_days(uk(2026, 11, 3, 10), 1)
    assert due.at.astimezone(UK).time() == time(16, 0)


def test_negative_days_are_refused() -> None:
    with pytest.raises(ValueError):
        ENG.add_working_days(uk(2026, 11, 3), -1)
    with pytest.raises(ValueError):
        ENG.working_days_before(uk(2026, 11, 3, 17), -1)


# --- reminders: n working days before a due instant, at opening time ----------------------------

@pytest.mark.parametrize("due, n, expected", [
    (uk(2026, 11, 10, 17), 0, uk(2026, 11, 10, 9)),
    (uk(2026, 11, 10, 17), 1, uk(2026, 11, 9, 9)),
    (uk(2026, 11, 9, 17), 1, uk(2026, 11, 6, 9)),  # Monday's reminder is on Friday
    (uk(2026, 12, 29, 17), 1, uk(2026, 12, 24, 9)),  # over Christmas
    (uk(2026, 12, 30, 17), 3, uk(2026, 12, 23, 9)),
    (uk(2026, 4, 7, 17), 1, uk(2026, 4, 2, 9)),  # over Easter
    (uk(2026, 3, 30, 17), 1, uk(2026, 3, 27, 9)),  # BST due, GMT reminder
    (uk(2026, 11, 7, 12), 0, uk(2026, 11, 6, 9)),  # a Saturday: the working day before
])
def test_working_days_before(due: datetime, n: int, expected: datetime) -> None:
    got = ENG.working_days_before(due, n)
    assert got == expected
    assert got.utcoffset() == timedelta(0)


# --- properties ---------------------------------------------------------------------------------

instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2029, 12, 31),
                        timezones=st.just(UTC))


@settings(max_examples=150, deadline=None)
@given(nation=st.sampled_from(sorted(CALS)), a=instants, b=instants, n=st.integers(0, 15))
def test_deadlines_monotone_and_on_working_days(nation: str, a: datetime, b: datetime,
                                                n: int) -> None:
    cal = CALS[nation]
    early, late = sorted((a, b))
    due_early, due_late = cal.add_working_days(early, n), cal.add_working_days(late, n)
    assert due_early.at <= due_late.at
    for due in (due_early, due_late):
        local = due.at.astimezone(UK)
        assert cal.is_working_day(local.date())
        assert local.time() == cal.close_of_business
        assert due.at.tzinfo is not None
        for day, reason in due.skipped:
            assert not cal.is_working_day(day) and reason not in ("Saturday", "Sunday")
    assert due_early.at >= early
    # more days never brings the deadline forward
    assert cal.add_working_days(early, n + 1).at > due_early.at


@settings(max_examples=100, deadline=None)
@given(nation=st.sampled_from(sorted(CALS)), at=instants, n=st.integers(0, 10))
def test_exactly_n_working_days_after_received(nation: str, at: datetime, n: int) -> None:
    cal = CALS[nation]
    due = cal.add_working_days(at, n)
    end = due.at.astimezone(UK).date()
    days = [due.received + timedelta(days=i) for i in range(1, (end - due.received).days + 1)]
    assert sum(cal.is_working_day(d) for d in days) == n
    assert cal.is_working_day(due.received)
    assert cal.working_days_before(due.at, n).astimezone(UK).date() == due.received
