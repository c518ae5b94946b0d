"""The five bundled policies: faithful to their source texts, and their no-resolution timelines."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailflow.core.deadlines import confirm_deadline, stage_deadlines, timeline
from mailflow.core.policy import Policy, load_policies, load_policy
from mailflow.resources import bundled_dir

UK = ZoneInfo("Europe/London")
SEED_FILES = {
    "swindon": "000_d5276ac099e7c727.txt",
    "kent-medway": "001_f44cbe0502bf46e7.txt",
    "shropshire": "002_482399081446637c.txt",
    "luton": "003_417300b6ee709e70.txt",
    "redbridge": "004_fcf87b2cc70e3616.txt",
}
POLICIES = load_policies([bundled_dir("policies")])


def uk(y: int, mo: int, d: int, h: int = 10, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UK)


def test_the_five_are_bundled() -> None:
    assert set(SEED_FILES) <= set(POLICIES)
    for name, policy in POLICIES.items():
        assert policy.name == name
        assert policy.calendar.nation == "ENG"
        assert policy.stages[-1].number == policy.last_stage == len(policy.stages)


# --- fidelity to the source texts ---------------------------------------------------------------

def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def _quotes(policy: Policy) -> list[tuple[str, str]]:
    out = [("final", policy.final.quote)]
    for stage in policy.stages:
        out.append((f"stage {stage.number}", stage.quote))
        for step in stage.steps:
            out.append((f"stage {stage.number} {step.name}", step.quote))
            if step.urgent_quote:
                out.append((f"stage {stage.number} {step.name} urgent", step.urgent_quote))
        for n in stage.notify:
            out.append((f"stage {stage.number} notify {n.role}", n.quote))
    return out


@pytest.mark.parametrize("name", sorted(SEED_FILES))
def test_every_quote_is_in_the_source(name: str, seeds: Path) -> None:
    """Each quote (its parts either side of "...") appears in the seed text, words and order."""
    source = _norm((seeds / SEED_FILES[name]).read_text())
    for where, quote in _quotes(POLICIES[name]):
        for part in quote.split("..."):
            assert _norm(part) in source, f"{name} {where}: {part!r} is not in the source"


def _days(policy: Policy, number: int) -> dict[str, tuple]:
    return {s.name: (s.days, s.counts_from, s.escalates) for s in policy.stage(number).steps}


def test_swindon() -> None:
    p = POLICIES["swindon"]
    assert len(p.stages) == 4
    for n in (1, 2, 3):
        assert _days(p, n) == {"resolve": (5, "stage_start", True),
                               "confirm": (5, "resolution", False)}
    assert _days(p, 4) == {"resolve": (5, "stage_start", True)}
    assert [s.copy_business_team for s in p.stages] == [False, True, True, True]
    [dosw] = p.stage(2).notify
    assert (dosw.role, dosw.when, dosw.only_for) == (
        "director_of_social_work", "before_next_stage", "local_authority_adult_services")
    assert p.stage(2).recipients("before_next_stage", "local_authority_adult_services") == (
        "director_of_social_work",)
    assert p.stage(2).recipients("before_next_stage", "police") == ()
    assert p.mailbox == "safeguardingpartnership@swindon.gov.uk"
    assert [s.tier for s in p.stages] == ["manager", "senior_manager", "executive", "chair"]


def test_kent_medway() -> None:
    p = POLICIES["kent-medway"]
    assert len(p.stages) == 4
    for n in (1, 2, 3):
        step = p.stage(n).step("respond")
        assert (step.days, step.counts_from, step.escalates, step.local_default) == (
            5, "stage_start", True, False)
    assert "key principle" in Path(p.source).read_text().lower()
    chair = p.stage(4)
    assert chair.tier == "chair" and chair.steps == ()
    assert (p.final.kind, p.final.days, p.final.local_default) == ("alert", 5, True)


def test_shropshire() -> None:
    p = POLICIES["shropshire"]
    assert len(p.stages) == 5
    resolves = [p.stage(n).step("resolve") for n in range(1, 6)]
    assert [s.days for s in resolves] == [2, 4, 5, 7, 9]
    assert {s.counts_from for s in resolves} == {"case_start"}
    assert all(s.escalates and not s.local_default for s in resolves)
    assert [s.copy_business_team for s in p.stages] == [False, False, False, True, True]


def test_luton() -> None:
    p = POLICIES["luton"]
    assert len(p.stages) == 4
    for stage in p.stages:
        assert stage.step("resolve").days == 5
        assert all(step.local_default for step in stage.steps)
    assert [n.role for n in p.stage(2).notify] == ["safeguarding_lead"]
    assert [n.role for n in p.stage(3).notify] == ["commissioning_lead"]
    assert [s.tier for s in p.stages] == ["practitioner", "manager", "safeguarding_lead", "board"]


def test_redbridge() -> None:
    p = POLICIES["redbridge"]
    assert _days(p, 1) == {"raise": (2, "case_start", False), "respond": (3, "stage_start", False),
                           "resolve": (5, "stage_start", True), "confirm": (2, "resolution", False)}
    assert _days(p, 2) == {"resolve": (5, "stage_start", True), "confirm": (2, "resolution", False)}
    assert _days(p, 3) == {"resolve": (5, "stage_start", True), "confirm": (2, "resolution", False)}
    assert _days(p, 4) == {"resolve": (5, "stage_start", True)}
    assert [s.copy_business_team for s in p.stages] == [False, False, True, True]
    text = Path(p.source).read_text()
    assert "within 2 working days or a timescale that protects the adult" in text  # the flowchart


def test_every_interpretation_is_quoted_and_defaults_marked() -> None:
    for policy in POLICIES.values():
        lines = Path(policy.source).read_text().splitlines()
        for i, line in enumerate(lines):
            if re.match(r"(days|urgent_days|copy_business_team|nation)\s*=", line):
                # an interpreting value carries a comment on its line or just above it
                near = [line, *lines[max(0, i - 3):i]]
                assert any("#" in x for x in near), (policy.name, i + 1)
        for stage in policy.stages:
            for step in stage.steps:
                assert step.quote.strip()
                if step.urgent_days is not None and step.urgent_days < (step.days or 0):
                    assert step.urgent_quote.strip(), (policy.name, stage.number, step.name)


# --- the no-resolution timelines ----------------------------------------------------------------

# Each scenario: its start (UK time), the escalation chain of the 5-working-day policies (Stage 1..4
# deadlines), Shropshire's five deadlines (2, 4, 5, 7, 9 working days from the case start), and
# Redbridge's Stage 1 raise (2 from the case start) and respond (3 from the stage start).
SCENARIOS = {
    "christmas": (uk(2026, 12, 21, 10),
                  ["2026-12-30", "2027-01-07", "2027-01-14", "2027-01-21"],
                  ["2026-12-23", "2026-12-29", "2026-12-30", "2027-01-04", "2027-01-06"],
                  ["2026-12-23", "2026-12-24"]),
    "easter_after_hours": (uk(2026, 4, 2, 18, 30),
                           ["2026-04-14", "2026-04-21", "2026-04-28", "2026-05-06"],
                           ["2026-04-09", "2026-04-13", "2026-04-14", "2026-04-16", "2026-04-20"],
                           ["2026-04-09", "2026-04-10"]),
    "spring_clock_change": (uk(2026, 3, 25, 10),
                            ["2026-04-01", "2026-04-10", "2026-04-17", "2026-04-24"],
                            ["2026-03-27", "2026-03-31", "2026-04-01", "2026-04-07", "2026-04-09"],
                            ["2026-03-27", "2026-03-30"]),
    "autumn_clock_change": (uk(2026, 10, 23, 16, 59),
                            ["2026-10-30", "2026-11-06", "2026-11-13", "2026-11-20"],
                            ["2026-10-27", "2026-10-29", "2026-10-30", "2026-11-03", "2026-11-05"],
                            ["2026-10-27", "2026-10-28"]),
    "weekend_receipt": (uk(2026, 6, 13, 11),
                        ["2026-06-22", "2026-06-29", "2026-07-06", "2026-07-13"],
                        ["2026-06-17", "2026-06-19", "2026-06-22", "2026-06-24", "2026-06-26"],
                        ["2026-06-17", "2026-06-18"]),
    "after_hours": (uk(2026, 11, 3, 17, 1),
                    ["2026-11-11", "2026-11-18", "2026-11-25", "2026-12-02"],
                    ["2026-11-06", "2026-11-10", "2026-11-11", "2026-11-13", "2026-11-17"],
                    ["2026-11-06", "2026-11-09"]),
}


def expected(name: str, chain: list[str], shrop: list[str], red: list[str]) -> list[tuple]:
    if name in ("swindon", "luton"):
        return [(n, "resolve", d) for n, d in enumerate(chain, 1)] + [(4, "final", chain[3])]
    if name == "kent-medway":  # Stage 4 (the Chair) has no timescale: alert 5 days after it starts
        return [(n, "respond", d) for n, d in enumerate(chain[:3], 1)] + [(4, "final", chain[3])]
    if name == "redbridge":
        return ([(1, "raise", red[0]), (1, "respond", red[1])]
                + [(n, "resolve", d) for n, d in enumerate(chain, 1)] + [(4, "final", chain[3])])
    assert name == "shropshire"
    return [(n, "resolve", d) for n, d in enumerate(shrop, 1)] + [(5, "final", shrop[4])]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@pytest.mark.parametrize("name", sorted(SEED_FILES))
def test_timeline(name: str, scenario: str) -> None:
    start, chain, shrop, red = SCENARIOS[scenario]
    specs = timeline(POLICIES[name], start, urgent=False)
    got = [(s.stage, s.step, s.due.astimezone(UK).date().isoformat()) for s in specs]
    assert got == expected(name, chain, shrop, red)
    for s in specs:
        assert s.due.astimezone(UK).time() == time(17, 0)
        assert s.due.tzinfo is not None and s.due.utcoffset().total_seconds() == 0
        assert s.urgent is False


URGENT_CHRISTMAS = {
    "swindon": [(1, "resolve", "2026-12-22"), (2, "resolve", "2026-12-23"),
                (3, "resolve", "2026-12-24"), (4, "resolve", "2026-12-29"), (4, "final", "2026-12-29")],
    "luton": [(1, "resolve", "2026-12-22"), (2, "resolve", "2026-12-23"),
              (3, "resolve", "2026-12-24"), (4, "resolve", "2026-12-29"), (4, "final", "2026-12-29")],
    # the final alert has no urgent variant: 5 working days after Stage 4 starts on the 24th
    "kent-medway": [(1, "respond", "2026-12-22"), (2, "respond", "2026-12-23"),
                    (3, "respond", "2026-12-24"), (4, "final", "2027-01-05")],
    # Stage 1 raise: "immediately" (the same day); the Chair's 5 days have no urgent variant
    "redbridge": [(1, "raise", "2026-12-21"), (1, "respond", "2026-12-22"),
                  (1, "resolve", "2026-12-22"), (2, "resolve", "2026-12-23"),
                  (3, "resolve", "2026-12-24"), (4, "resolve", "2027-01-05"),
                  (4, "final", "2027-01-05")],
    "shropshire": [(1, "resolve", "2026-12-22"), (2, "resolve", "2026-12-23"),
                   (3, "resolve", "2026-12-24"), (4, "resolve", "2026-12-29"),
                   (5, "resolve", "2026-12-30"), (5, "final", "2026-12-30")],
}


@pytest.mark.parametrize("name", sorted(URGENT_CHRISTMAS))
def test_urgent_timeline(name: str) -> None:
    specs = timeline(POLICIES[name], uk(2026, 12, 21, 10), urgent=True)
    got = [(s.stage, s.step, s.due.astimezone(UK).date().isoformat()) for s in specs]
    assert got == URGENT_CHRISTMAS[name]
    assert all(s.urgent for s in specs)
    assert "urgent" in specs[0].rule


def test_clock_change_offsets() -> None:
    """Deadlines are 17:00 UK time: 17:00Z before the spring change, 16:00Z after."""
    specs = timeline(POLICIES["shropshire"], uk(2026, 3, 25, 10), urgent=False)
    assert [s.due.astimezone(UK).isoformat() for s in specs[:2]] == [
        "2026-03-27T17:00:00+00:00", "2026-03-31T17:00:00+01:00"]
    assert specs[1].due.isoformat() == "2026-03-31T16:00:00+00:00"
    specs = timeline(POLICIES["swindon"], uk(2026, 10, 23, 16, 59), urgent=False)
    assert specs[0].due.astimezone(UK).isoformat() == "2026-10-30T17:00:00+00:00"


def test_rule_and_skipped_explain_the_deadline() -> None:
    specs = timeline(POLICIES["swindon"], uk(2026, 12, 21, 10), urgent=False)
    first, second = specs[0], specs[1]
    assert first.rule == ("resolve within 5 working days of Stage 1 starting "
                          "(received Mon 21 Dec 2026), by close of business 17:00")
    assert [reason for _, reason in first.skipped] == ["Christmas Day", "Boxing Day (observed)"]
    assert second.rule == ("resolve within 5 working days of Stage 2 starting "
                           "(received Wed 30 Dec 2026), by close of business 17:00")
    assert [reason for _, reason in second.skipped] == ["New Year's Day"]
    assert second.notify == ("business_team", "director_of_social_work")
    assert specs[-1].step == "final" and specs[-1].notify == ("business_team", "chair")


def test_stage_deadlines_after_manual_escalation() -> None:
    """A manual escalation starts the next stage's clock when it is received."""
    p = POLICIES["redbridge"]
    case_start = uk(2026, 11, 2, 9)
    specs = stage_deadlines(p, 2, uk(2026, 11, 3, 18), case_start, urgent=False)  # after hours
    assert [(s.step, s.due.astimezone(UK).date().isoformat()) for s in specs] == [
        ("resolve", "2026-11-11")]  # received Wed 4th, +5 working days
    assert "received Wed 4 Nov 2026" in specs[0].rule
    # Shropshire counts from the case start whatever the stage start
    sh = stage_deadlines(POLICIES["shropshire"], 3, uk(2026, 11, 4, 12), case_start, False)
    assert [s.due.astimezone(UK).date().isoformat() for s in sh] == ["2026-11-09"]
    assert "of the case starting" in sh[0].rule


@pytest.mark.parametrize("name, stage, days", [
    ("swindon", 1, 5), ("swindon", 3, 5), ("redbridge", 1, 2), ("redbridge", 3, 2),
    ("kent-medway", 2, 5), ("luton", 4, 5), ("shropshire", 5, 5),
])
def test_confirm_deadline(name: str, stage: int, days: int) -> None:
    spec = confirm_deadline(POLICIES[name], stage, uk(2026, 12, 23, 15), urgent=False)
    assert spec is not None and spec.step == "confirm" and spec.days == days
    assert spec.counts_from == "resolution" and not spec.escalates
    expected_day = {2: "2026-12-29", 5: "2027-01-04"}[days]  # 24, 29, 30, 31, 4
    assert spec.due.astimezone(UK).date().isoformat() == expected_day
    assert "of the resolution" in spec.rule


def test_no_confirm_deadline_where_the_policy_has_none() -> None:
    assert confirm_deadline(POLICIES["swindon"], 4, uk(2026, 12, 23, 15), urgent=False) is None
    assert confirm_deadline(POLICIES["shropshire"], 1, uk(2026, 12, 23, 15), urgent=False) is None


def test_policy_model_does_not_import_the_deadline_arithmetic() -> None:
    """core.deadlines builds on core.policy, never the other way round (no import cycle)."""
    code = ("import sys, mailflow.core.policy as p; "
            "print('mailflow.core.deadlines' in sys.modules, hasattr(p, 'timeline'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_load_policy_names_from_file_stem(tmp_path: Path) -> None:
    target = tmp_path / "swindon-copy.toml"
    target.write_bytes((bundled_dir("policies") / "swindon.toml").read_bytes())
    assert load_policy(target).name == "swindon-copy"


# --- properties of every policy's timeline -------------------------------------------------------

starts = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2029, 12, 31),
                      timezones=st.just(UTC))


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(SEED_FILES)), a=starts, b=starts, urgent=st.booleans())
def test_timelines_monotone_and_on_working_days(name: str, a: datetime, b: datetime,
                                                urgent: bool) -> None:
    policy = POLICIES[name]
    early, late = sorted((a, b))
    first, second = timeline(policy, early, urgent), timeline(policy, late, urgent)
    assert [(s.stage, s.step) for s in first] == [(s.stage, s.step) for s in second]
    for x, y in zip(first, second, strict=True):
        assert x.due <= y.due  # a later start never gives an earlier deadline
    for spec in first + second:
        local = spec.due.astimezone(UK)
        assert policy.calendar.is_working_day(local.date())
        assert local.time() == policy.calendar.close_of_business
    escalating = [s.due for s in first if s.escalates]
    assert escalating == sorted(escalating) and escalating[0] >= early
    if urgent:
        normal = {(s.stage, s.step): s.due for s in timeline(policy, early, False)}
        assert all(s.due <= normal[(s.stage, s.step)] for s in first)
