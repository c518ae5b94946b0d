"""Policy files: validation with clear errors, partnership directories, other nations' calendars."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mailflow.core.deadlines import timeline
from mailflow.core.policy import load_policies, load_policy
from mailflow.errors import ConfigError, PolicyError
from mailflow.resources import bundled_dir

UK = ZoneInfo("Europe/London")

# A small valid policy for an invented partnership; tests change one thing at a time.
VALID = """\
[partnership]
name = "Ashvale Safeguarding Adults Board"
title = "Resolving Professional Differences"
mailbox = "escalations@ashvale.example"

[calendar]
nation = "{nation}"
closures = [{closures}]

[[stages]]
number = 1
title = "Practitioners"
tier = "practitioner"
acting_role = "the practitioners involved"
quote = "Practitioners resolve it within 3 working days."

[[stages.steps]]
name = "resolve"
days = 3
urgent_days = 1
counts_from = "stage_start"
escalates = true
quote = "within 3 working days"

[[stages]]
number = 2
title = "Managers"
tier = "manager"
acting_role = "Team Manager"
quote = "Managers resolve it within 5 working days."
copy_business_team = true

[[stages.steps]]
name = "resolve"
days = 5
counts_from = "stage_start"
escalates = true
quote = "within 5 working days"

[[stages.steps]]
name = "confirm"
days = 2
counts_from = "resolution"
quote = "confirmed in writing within 2 working days"

[[stages.notify]]
role = "safeguarding_lead"
label = "the agency's safeguarding lead"
quote = "The safeguarding lead is told."

[final]
kind = "alert"
local_default = true
quote = "Unresolved matters go to the Chair."
"""


def write(tmp_path: Path, text: str, name: str = "ashvale") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def valid(nation: str = "ENG", closures: str = "") -> str:
    return VALID.format(nation=nation, closures=closures)


def test_the_valid_example_loads(tmp_path: Path) -> None:
    p = load_policy(write(tmp_path, valid(closures='2026-12-24, "2026-12-31"')))
    assert (p.name, p.partnership, p.mailbox) == (
        "ashvale", "Ashvale Safeguarding Adults Board", "escalations@ashvale.example")
    assert p.calendar.closures == frozenset({date(2026, 12, 24), date(2026, 12, 31)})
    assert p.calendar.close_of_business == time(17, 0) and p.calendar.tz == "Europe/London"
    assert p.reminder_days_before == 1
    assert p.stage(2).step("confirm").counts_from == "resolution"
    assert p.stage(2).notify[0].when == "stage_start"
    assert p.final.days is None
    with pytest.raises(KeyError):
        p.stage(3)


# (change to the valid text, key named in the error, words in the problem)
BROKEN = [
    (lambda s: s.replace('nation = "ENG"', 'nation = "GB"'), "calendar.nation", "not one of"),
    (lambda s: s.replace('nation = "ENG"\n', ""), "calendar.nation", "is required"),
    (lambda s: s.replace("days = 3\n", "days = 90\n"), "stages[1].steps[1].days", "between 0"),
    (lambda s: s.replace("days = 3\n", "days = -1\n"), "stages[1].steps[1].days", "between 0"),
    (lambda s: s.replace("days = 3\n", 'days = "3"\n'), "stages[1].steps[1].days",
     "expected an integer, got a string '3'"),
    (lambda s: s.replace('name = "resolve"\ndays = 3', 'name = "decide"\ndays = 3'),
     "stages[1].steps[1].name", "not one of raise, respond, resolve, confirm"),
    (lambda s: s.replace('tier = "manager"', 'tier = "boss"'), "stages[2].tier", "not one of"),
    (lambda s: s.replace("number = 2", "number = 3"), "stages[2].number", "must be 2"),
    (lambda s: s.replace('quote = "within 3 working days"', 'quote = "within 3 working days"\n'
                         'escalate = true'), "stages[1].steps[1]",
     "unknown key 'escalate' (did you mean 'escalates'?)"),
    (lambda s: s.replace('mailbox = "escalations@ashvale.example"', 'mailbox = "ashvale"'),
     "partnership.mailbox", "not an email address"),
    (lambda s: s.replace("[calendar]\n", '[calendar]\nclose_of_business = "5pm"\n'),
     "calendar.close_of_business", "not a time"),
    (lambda s: s.replace("[calendar]\n", '[calendar]\nopens = "18:00"\n'),
     "calendar", "opens must be before close_of_business"),
    (lambda s: s.replace("[calendar]\n", '[calendar]\ntime_zone = "Mars/Olympus"\n'),
     "calendar", "Mars/Olympus"),
    (lambda s: s.replace("closures = []", 'closures = ["24/12/2026"]'),
     "calendar.closures[1]", "not a date"),
    (lambda s: s.replace('counts_from = "resolution"', 'counts_from = "stage_start"'),
     "stages[2].steps[2].counts_from", "confirm step counts from the resolution"),
    (lambda s: s.replace('counts_from = "resolution"\n', 'counts_from = "resolution"\nescalates = true\n'),
     "stages[2].steps[2].escalates", "cannot escalate"),
    (lambda s: s.replace("urgent_days = 1\ncounts_from", 'urgent_days = 1\ncounts_from = "x"\n#'),
     "stages[1].steps[1].counts_from", "not one of"),
    (lambda s: s.replace("escalates = true\nquote = \"within 3", "quote = \"within 3"),
     "stages[1].steps", "every stage but the last needs a step with escalates = true"),
    (lambda s: s.replace('kind = "alert"', 'kind = "alert"\ndays = 4'), "final.days",
     "remove days"),
    (lambda s: s.replace('kind = "alert"', 'kind = "email"'), "final.kind", "not one of"),
    (lambda s: s.replace('role = "safeguarding_lead"', 'role = "Safeguarding Lead"'),
     "stages[2].notify[1].role", "snake_case"),
    (lambda s: s.replace("[final]", "[finale]"), "", "unknown key 'finale' (did you mean 'final'?)"),
    (lambda s: s[:s.index("[final]")], "final", "is required"),
    (lambda s: s.replace('title = "Managers"\n', ""), "stages[2].title", "is required"),
    (lambda s: s.replace('quote = "Practitioners resolve it within 3 working days."',
                         'quote = "  "'), "stages[1].quote", "must not be empty"),
    (lambda s: s + "\n[extra]\nx = 1\n", "", "unknown key 'extra' (allowed: calendar, final, partnership, stages)"),
    (lambda s: s.replace("[calendar]\n", "[calendar]\nnaton = 1\n"), "calendar",
     "unknown key 'naton' (did you mean 'nation'?)"),
    (lambda s: s.replace('urgent_days = 1\n', 'urgent_days = true\n'), "stages[1].steps[1].urgent_days",
     "expected an integer, got a boolean True"),
    (lambda s: s.replace('nation = "ENG"', 'nation = "ENG"\nclosures = "2026-12-24"').replace("closures = []\n", ""),
     "calendar.closures", "expected a list, got a string '2026-12-24'"),
    (lambda s: s.replace("[[stages]]\nnumber = 1", "[[stages]]\nnumber = 1\nnumber = 1"),
     "(syntax)", ""),
]


@pytest.mark.parametrize("change, key, problem", BROKEN)
def test_errors_name_file_key_and_problem(tmp_path: Path, change, key: str, problem: str) -> None:
    text = change(valid())
    assert text != valid()
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    message = str(err.value)
    assert message.startswith(f"{path}: {key}: " if key else f"{path}: "), message
    assert "\n" not in message
    assert problem in message
    assert isinstance(err.value, ConfigError) and err.value.exit_code == 2


def test_last_stage_without_timescale_needs_final_days(tmp_path: Path) -> None:
    text = valid()
    last = text.index('[[stages.steps]]\nname = "resolve"\ndays = 5')
    text = text[:last] + text[text.index("[[stages.notify]]"):]
    with pytest.raises(PolicyError, match=r"final\.days: stage 2 has no escalating step"):
        load_policy(write(tmp_path, text))
    p = load_policy(write(tmp_path, text.replace('kind = "alert"', 'kind = "alert"\ndays = 4')))
    assert p.final.days == 4 and p.stage(2).steps == ()
    specs = timeline(p, datetime(2026, 11, 2, 10, tzinfo=UK), urgent=False)
    assert [(s.stage, s.step, s.due.astimezone(UK).date()) for s in specs] == [
        (1, "resolve", date(2026, 11, 5)), (2, "final", date(2026, 11, 11))]


def test_case_start_timescales_must_grow(tmp_path: Path) -> None:
    text = valid().replace('counts_from = "stage_start"', 'counts_from = "case_start"')
    p = load_policy(write(tmp_path, text))
    assert [s.escalating_step.counts_from for s in p.stages] == ["case_start", "case_start"]
    with pytest.raises(PolicyError, match=r"stages\[2\]\.steps\.days: counted from the case "
                                          r"start it must be more than stage 1's 3"):
        load_policy(write(tmp_path, text.replace("days = 5\n", "days = 3\n")))
    with pytest.raises(PolicyError, match=r"stages\[2\]\.steps\.urgent_days: .* stage 1's 1"):
        load_policy(write(tmp_path, text.replace("days = 5\n", "days = 5\nurgent_days = 1\n")))


def test_bad_file_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="file name"):
        load_policy(write(tmp_path, valid(), name="Ashvale Board"))


# --- directories: bundled first, then the partnership's ------------------------------------------

def test_a_partnership_adds_and_overrides_policies(tmp_path: Path) -> None:
    own = tmp_path / "policies"
    own.mkdir()
    write(own, valid(), name="ashvale")
    override = (bundled_dir("policies") / "luton.toml").read_text().replace(
        "lsab-escalations@luton.example", "disputes@luton-board.example")
    write(own, override, name="luton")
    (own / "notes.txt").write_text("not a policy")
    policies = load_policies([bundled_dir("policies"), own])
    assert {"swindon", "kent-medway", "shropshire", "luton", "redbridge", "ashvale"} <= set(policies)
    assert policies["luton"].mailbox == "disputes@luton-board.example"
    assert policies["luton"].source == own / "luton.toml"
    assert policies["swindon"].source.parent == bundled_dir("policies")


def test_a_broken_partnership_policy_stops_loading(tmp_path: Path) -> None:
    write(tmp_path, valid().replace("days = 3\n", "days = 99\n"))
    with pytest.raises(PolicyError, match="ashvale.toml: stages"):
        load_policies([bundled_dir("policies"), tmp_path])


def test_a_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="policies directory not found"):
        load_policies([tmp_path / "nowhere"])


def test_the_readme_worked_example(tmp_path: Path) -> None:
    """The children's partnership in policies/README.md loads and gives the dates it states."""
    readme = (bundled_dir("policies") / "README.md").read_text()
    [example] = re.findall(r"```toml\n(# Glanmor.*?)```", readme, re.S)
    write(tmp_path, example, name="glanmor-children")
    policies = load_policies([bundled_dir("policies"), tmp_path])
    p = policies["glanmor-children"]
    assert p.calendar.nation == "WLS" and p.calendar.closures == frozenset({date(2026, 12, 24)})
    specs = timeline(p, datetime(2026, 12, 22, 10, tzinfo=UK), urgent=False)
    got = [(s.stage, s.step, s.due.astimezone(UK).strftime("%a %-d %b %Y %H:%M")) for s in specs]
    assert got == [(1, "resolve", "Tue 29 Dec 2026 17:00"), (2, "resolve", "Wed 6 Jan 2027 17:00"),
                   (2, "final", "Wed 6 Jan 2027 17:00")]
    assert [r for _, r in specs[0].skipped] == ["closure", "Christmas Day", "Boxing Day (observed)"]
    for phrase in ("Tue 29 Dec 2026 17:00 GMT", "Wed 6 Jan 2027 17:00 GMT"):
        assert phrase in readme


# --- Scotland and Northern Ireland, through a test policy ----------------------------------------

# (nation, start, [stage 1 due, stage 2 due]) with stage 1 = 3 working days, stage 2 = 5.
NATIONS = [
    # New Year: Scotland also closes on 2 January (observed on Monday 4 January 2027)
    ("SCT", datetime(2026, 12, 29, 10, tzinfo=UK), [date(2027, 1, 5), date(2027, 1, 12)]),
    ("ENG", datetime(2026, 12, 29, 10, tzinfo=UK), [date(2027, 1, 4), date(2027, 1, 11)]),
    ("NIR", datetime(2026, 12, 29, 10, tzinfo=UK), [date(2027, 1, 4), date(2027, 1, 11)]),
    # Easter: no Easter Monday in Scotland
    ("SCT", datetime(2026, 4, 1, 10, tzinfo=UK), [date(2026, 4, 7), date(2026, 4, 14)]),
    ("NIR", datetime(2026, 4, 1, 10, tzinfo=UK), [date(2026, 4, 8), date(2026, 4, 15)]),
    # St Andrew's Day (Mon 30 Nov 2026) and St Patrick's Day (Tue 17 Mar 2026)
    ("SCT", datetime(2026, 11, 26, 10, tzinfo=UK), [date(2026, 12, 2), date(2026, 12, 9)]),
    ("NIR", datetime(2026, 3, 16, 18, tzinfo=UK), [date(2026, 3, 23), date(2026, 3, 30)]),
    # the Twelfth (Sunday 12 July 2026, observed Monday 13th); Scotland's early August holiday
    ("NIR", datetime(2026, 7, 10, 10, tzinfo=UK), [date(2026, 7, 16), date(2026, 7, 23)]),
    ("SCT", datetime(2026, 7, 30, 10, tzinfo=UK), [date(2026, 8, 5), date(2026, 8, 12)]),
    ("ENG", datetime(2026, 7, 30, 10, tzinfo=UK), [date(2026, 8, 4), date(2026, 8, 11)]),
]


@pytest.mark.parametrize("nation, start, dues", NATIONS)
def test_other_nations_calendars(tmp_path: Path, nation: str, start: datetime,
                                 dues: list[date]) -> None:
    p = load_policy(write(tmp_path, valid(nation=nation)))
    specs = timeline(p, start, urgent=False)
    assert [s.due.astimezone(UK).date() for s in specs] == [*dues, dues[-1]]
    assert all(s.due.astimezone(UK).time() == time(17, 0) for s in specs)
    assert specs[1].notify == ("business_team", "safeguarding_lead")


def test_closures_in_a_policy_move_its_deadlines(tmp_path: Path) -> None:
    p = load_policy(write(tmp_path, valid(closures="2026-11-04")))
    specs = timeline(p, datetime(2026, 11, 2, 10, tzinfo=UK), urgent=False)
    assert specs[0].due.astimezone(UK).date() == date(2026, 11, 6)
    assert specs[0].skipped == ((date(2026, 11, 4), "closure"),)
