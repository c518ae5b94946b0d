"""The digest's content at a fixed instant on a populated database: the numbers in every section,
the chart and the Appendix 1 CSV, and no adult's details in subject, body or CSV unless the
partnership's config allows them in the CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import select

from mailflow.app import App
from mailflow.clock import FixedClock, parse_instant
from mailflow.db.models import Case, OutboxMessage
from mailflow.pipeline import digest as digest_module
from mailflow.pipeline.digest import Digest, render_digests, send_digests
from mailflow.pipeline.resolution_log import resolution_log
from mailflow.queries.overview import overview
from tests.conftest import make_config, make_form, make_message
from tests.engine.conftest import ASC_MANAGER, RAISER, START, Harness

T = parse_instant
OUTSIDER = "kim.volunteer@charity.example.net"
PERSONAL = ("Ada", "Testperson", "1951", "03/04/1951", "Example Road", "SN1 0XX")


def _harness(tmp_path: Path, db_url: str, personal: bool = False) -> Harness:
    clock = FixedClock(T(START))
    config = make_config(tmp_path, db_url, extra="[limits]\nmax_message_bytes = 60000\n",
                         extra_partnership="digest_personal_data = true" if personal else "")
    return Harness(App.open(config, clock), clock)


def _populate(h: Harness) -> dict[str, str]:
    """Monday 21 December 2026, 10am: six cases and a quarantined message (invented people)."""
    refs = {"open": h.open_case(), "urgent": h.open_case(at_risk=True)}
    form = make_form(OUTSIDER, other_agency="Riverside Befriending Charity").replace(
        b"Great Western Hospitals NHS Foundation Trust", b"Hilltop Community Lunch Club")
    h.ingest(form)   # neither agency is in the directory: nobody to route to
    refs["unroutable"] = _last_ref(h)
    refs["resolved"] = h.open_case()
    h.reply(refs["resolved"], ASC_MANAGER, "#resolved agreed a joint discharge plan")
    refs["closed"] = h.open_case()
    h.reply(refs["closed"], ASC_MANAGER, "#resolved agreed to review the care package")
    h.reply(refs["closed"], RAISER, "#confirmed")
    hostile = make_form().replace(b"professional disagreement: Disagreement about",
                                  b"professional disagreement: =HYPERLINK(\"http://x.example\") about")
    h.ingest(hostile)
    refs["hostile"] = _last_ref(h)
    h.ingest(make_form("zoe.sample@awp.nhs.example.org", omit=("disagreement_summary",)))
    refs["incomplete"] = _last_ref(h)
    h.ingest(make_message(RAISER, "Photos", "x" * 70_000))   # over [limits] max_message_bytes: quarantined
    return refs


def _last_ref(h: Harness) -> str:
    with h.app.db.transaction() as s:
        ref = s.scalars(select(Case.reference).order_by(Case.id.desc())).first()
        assert ref is not None
        return ref


@pytest.fixture
def populated(tmp_path: Path, db_url: str) -> Iterator[tuple[Harness, dict[str, str]]]:
    h = _harness(tmp_path, db_url)
    refs = _populate(h)
    yield h, refs
    h.app.close()


def _digest(h: Harness, at: str) -> Digest:
    h.clock.set(T(at))
    return render_digests(h.app, h.clock.now())[0]


def _section(text: str, title: str) -> str:
    start = text.index(title)
    end = text.find("\n\n", start)
    return text[start:end if end > 0 else None]


def _no_personal_data(d: Digest, csv_too: bool = True) -> None:
    parts = [d.subject, d.text, d.html] + ([d.csv.decode("utf-8-sig")] if csv_too else [])
    for part in parts:
        for personal in PERSONAL:
            assert personal not in part


def test_the_next_morning(populated) -> None:  # type: ignore[no-untyped-def]
    h, refs = populated
    d = _digest(h, "2026-12-22T08:00:00")   # Tuesday's digest; none before: "since" is Monday's 8am
    o = d.overview
    assert o.since == T("2026-12-21T08:00:00")
    assert o.by_state == {"open": 4, "resolved": 1, "closed": 1, "incomplete": 1}
    assert [(c.stage, c.open, c.urgent) for c in o.by_stage] == [(1, 4, 1)]
    assert d.subject == "[SSP] Escalations digest Tue 22 Dec: 4 open, " \
        f"{o.overdue.total} overdue, {o.due_soon.total} due soon, 1 need a person"
    # Agencies of the live cases (open, or resolved awaiting confirmation), each case under the
    # first agency named on each side: the unroutable one's other agency is not identified.
    agencies = {a.agency: (a.raised, a.received) for a in o.by_agency}
    assert agencies == {"Great Western Hospitals NHS Foundation Trust": (4, 0),
                        "Swindon Borough Council - Adult Social Care": (0, 4),
                        "Hilltop Community Lunch Club": (1, 0), "(agency not identified)": (0, 1)}
    live = o.by_state["open"] + o.by_state["resolved"]   # each live case counted once on each side
    assert sum(a.raised for a in o.by_agency) == sum(a.received for a in o.by_agency) == live
    assert [c.reference for c in o.new] == list(refs.values()) and o.new.total == 7
    assert {c.reference for c in o.resolved} == {refs["resolved"], refs["closed"]}
    assert all(c.working_days == 0 for c in o.resolved)
    assert [(c.reference, c.handed_over) for c in o.awaiting_confirmation] == [(refs["resolved"], False)]
    assert [(c.reference, c.kind) for c in o.stalled] == [(refs["unroutable"], "nobody_to_route_to")]
    assert (o.quarantined_waiting, o.quarantined_new) == (1, 1)
    assert o.age_by_stage == {1: (4, 0, 0, 0)}
    # The same in the text a person reads.
    assert "Open: 4 (1 urgent); resolved, awaiting written confirmation: 1; incomplete drafts: 1" in d.text
    assert f"{refs['unroutable']}  Stage 1: nobody to route to (since Mon 21 Dec)" in d.text
    assert f"{refs['resolved']}  at Stage 1 on Mon 21 Dec, 0 working days after it was raised" in d.text
    assert f"{refs['closed']}  at Stage 1 on Mon 21 Dec, 0 working days after it was raised; confirmed in writing" \
        in d.text
    assert "Quarantined, waiting for review: 1 (1 new since the last digest): mailflow quarantine list" in d.text
    assert d.chart_png is not None and d.chart_png.startswith(b"\x89PNG")
    _no_personal_data(d)


def test_overdue_with_how_long_and_due_in_the_next_two_working_days(populated) -> None:  # type: ignore[no-untyped-def]
    h, refs = populated
    # Nobody swept since Monday (the daemon was down over Christmas): the Stage 1 deadlines
    # (Wednesday 30 December, 5pm) have passed unanswered.
    d = _digest(h, "2026-12-31T09:00:00")
    overdue = {c.reference: c for c in d.overview.overdue}
    plain = overdue[refs["open"]]
    assert (plain.step, plain.action, plain.due_at) == ("resolve", "escalate", T("2026-12-30T17:00:00"))
    assert plain.working_days == 1 and plain.overdue_by.total_seconds() == 16 * 3600
    assert refs["closed"] not in overdue and refs["incomplete"] not in overdue
    assert f"{refs['open']}  Stage 1 resolve (escalate) was due Wednesday 30 December 2026, 5pm: " \
        "overdue 1 working day (16 hours)" in d.text
    # The resolved case's written confirmation (5 working days) was due on Tuesday 29th.
    assert overdue[refs["resolved"]].step == "confirm"
    # Two working days from Thursday 31st: Friday 1 January is a bank holiday, so to the close of
    # Tuesday 5th (as the policy counts working days).
    assert d.overview.due_until == T("2027-01-05T17:00:00")
    # Once swept, the open cases move to Stage 2 and are no longer overdue; the one nobody can be
    # reached for is held at Stage 1, still overdue since its deadline.
    h.sweep()
    swept = render_digests(h.app, h.clock.now())[0].overview
    assert h.case(refs["open"])["stage"] == h.case(refs["hostile"])["stage"] == 2
    assert h.case(refs["unroutable"])["stage"] == 1
    assert {c.stage: c.open for c in swept.by_stage}[2] == 2
    still = {c.reference for c in swept.overdue}
    assert refs["unroutable"] in still and refs["resolved"] in still
    assert refs["open"] not in still and refs["hostile"] not in still
    _no_personal_data(d)


def test_lists_are_capped_with_and_n_more(populated, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    h, refs = populated
    with h.app.db.transaction() as s:
        view = overview(s, h.rt, T("2026-12-22T08:00:00"), T("2026-12-21T08:00:00"), limit=2)
    assert len(view.new.items) == 2 and view.new.total == 7 and view.new.more == 5
    monkeypatch.setattr(digest_module, "LIST_LIMIT", 3)
    d = _digest(h, "2026-12-22T08:00:00")
    assert "New since the last digest (7):" in d.text and "  ... and 4 more" in d.text
    assert "… and 4 more" in d.html


def test_the_csv_is_appendix_1_without_the_adults_details_unless_allowed(populated, tmp_path: Path,
                                                                        db_url: str) -> None:  # type: ignore[no-untyped-def]
    h, refs = populated
    d = _digest(h, "2026-12-22T08:00:00")
    rows = list(csv.reader(io.StringIO(d.csv.decode("utf-8-sig"))))
    assert rows[0][:6] == ["Case Number", "Adult's Details: Name: DOB: Unique Identifier", "Concern",
                           "Summary of Professional Difference", "Action taken towards reaching a Resolution",
                           "Outcome of Resolution"]
    by_ref = {r[0]: r for r in rows[1:]}
    # Live cases and those closed since the last digest; not the incomplete draft.
    assert set(by_ref) == {refs[k] for k in ("open", "urgent", "unroutable", "resolved", "closed", "hostile")}
    assert by_ref[refs["open"]][1].startswith("withheld")
    # The agencies as the case holds them (the first named on each side): none identified is blank.
    assert by_ref[refs["open"]][6:8] == ["Great Western Hospitals NHS Foundation Trust",
                                         "Swindon Borough Council - Adult Social Care"]
    assert by_ref[refs["unroutable"]][7] == ""
    assert by_ref[refs["resolved"]][5].startswith("Resolved at Stage 1 on 21 December 2026 "
                                                  "(awaiting written confirmation): agreed a joint discharge plan")
    assert by_ref[refs["hostile"]][3].startswith("'=HYPERLINK")   # a spreadsheet shows it, never runs it
    assert d.csv_name == "SSP-case-resolution-log-2026-12-22.csv"
    _no_personal_data(d)


def test_a_long_csv_is_capped_live_cases_first_in_case_order(populated) -> None:  # type: ignore[no-untyped-def]
    h, refs = populated
    live = [refs[k] for k in ("open", "urgent", "unroutable", "resolved", "hostile")]   # case order
    for cap, listed in ((2, live[:2]), (5, live), (6, [*live, refs["closed"]])):
        with h.app.db.transaction() as s:
            log = resolution_log(s, "SSP", T("2026-12-21T08:00:00"), False, {1: "Stage 1"}, max_rows=cap)
        rows = list(csv.reader(io.StringIO(log.decode("utf-8-sig"))))[1:]
        more = [f"... and {6 - cap} more cases: mailflow cases list"] if cap < 6 else []
        assert [r[0] for r in rows] == listed + more


def test_the_adults_details_go_in_the_csv_only_when_the_config_allows(tmp_path: Path) -> None:
    h = _harness(tmp_path, f"sqlite:///{tmp_path / 'allowed.db'}", personal=True)
    try:
        ref = h.open_case()
        d = _digest(h, "2026-12-22T08:00:00")
        row = next(r for r in csv.reader(io.StringIO(d.csv.decode("utf-8-sig"))) if r[0] == ref)
        assert row[1] == "Name: Ada Testperson; DOB: 3 April 1951"
        _no_personal_data(d, csv_too=False)   # subject and body: never
    finally:
        h.app.close()


def test_the_digest_mail_carries_the_chart_inline_and_the_csv(populated) -> None:  # type: ignore[no-untyped-def]
    h, refs = populated
    h.clock.set(T("2026-12-22T08:00:00"))
    assert send_digests(h.app, h.clock.now()) == 1
    with h.app.db.transaction() as s:
        row = s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "digest")).one()
    msg = message_from_bytes(row.raw, policy=policy.default)
    html = msg.get_body(("html",))
    assert html is not None and 'src="cid:open-cases-chart@mailflow"' in html.get_content()  # type: ignore[attr-defined]
    parts = {p.get_content_type(): p for p in msg.walk()}
    assert parts["image/png"]["Content-ID"] == "<open-cases-chart@mailflow>"
    assert parts["image/png"].get_content_disposition() == "inline"
    assert parts["text/csv"].get_filename() == "SSP-case-resolution-log-2026-12-22.csv"
    raw = row.raw.decode("utf-8", "replace")
    for personal in PERSONAL:
        assert personal not in str(msg["Subject"]) and personal not in raw
    # The next digest's "new" counts from this one.
    h.clock.set(T("2026-12-23T08:00:00"))
    assert render_digests(h.app, h.clock.now())[0].overview.new.total == 0
