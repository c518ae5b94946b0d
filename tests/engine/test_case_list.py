"""The case-list read model (mailflow/queries/case_list.py) and `mailflow cases list`: filters,
keyset pages that add up to the whole list, each case's next deadline as `cases show` gives it,
and the streamed JSON output. SQLite and PostgreSQL. Invented people only."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from mailflow.case_view import case_summary
from mailflow.cli import cases_cmd
from mailflow.cli.main import main
from mailflow.clock import parse_instant
from mailflow.db.models import Case
from mailflow.queries.case_list import CaseFilter, CaseRow, count_cases, iter_cases, list_cases
from tests.conftest import write_config
from tests.engine.conftest import Harness


def _open_cases(h: Harness, n: int) -> list[str]:
    return [h.open_case(f"raiser{i}@gwh.nhs.example.org") for i in range(n)]


def test_pages_add_up_to_the_whole_list_in_case_order(h_any: Harness) -> None:
    refs = _open_cases(h_any, 7)
    with h_any.app.db.transaction() as s:
        seen, after, pages = [], None, 0
        while True:
            page = list_cases(s, limit=3, after=after)
            pages += 1
            seen += [r.reference for r in page.rows]
            if page.next_after is None:
                break
            after = page.next_after
        assert seen == refs and pages == 3
        assert [r.reference for r in iter_cases(s, page_size=2)] == refs
        assert count_cases(s) == 7


def test_next_deadline_is_the_one_cases_show_names(h_any: Harness) -> None:
    refs = _open_cases(h_any, 2)
    h_any.run_until("2026-12-31T10:00:00")   # the first case escalates: new deadlines
    with h_any.app.db.transaction() as s:
        rows = {r.reference: r for r in iter_cases(s)}
        for case in s.scalars(select(Case)):
            summary = case_summary(case)
            row = rows[case.reference]
            assert row.next_step == summary["next_step"]
            assert (row.next_due.isoformat() if row.next_due else None) == \
                (parse_instant(summary["next_due"]).isoformat() if summary["next_due"] else None)
            assert row.next_action != "remind"
    assert set(rows) == set(refs) and all(r.next_due is not None for r in rows.values())


def test_filters(h_any: Harness) -> None:
    first, second, third = _open_cases(h_any, 3)
    with h_any.app.db.transaction() as s:
        s.scalars(select(Case).where(Case.reference == third)).one().state = "closed"
    with h_any.app.db.transaction() as s:
        def refs(**kw: object) -> list[str]:
            return [r.reference for r in iter_cases(s, CaseFilter(**kw))]  # type: ignore[arg-type]

        assert refs(state="closed") == [third]
        assert refs(state="open") == [first, second]
        assert refs(stage=1) == [first, second, third] and refs(stage=2) == []
        assert refs(reference=first) == [first]
        assert refs(reference=first[:4].lower()) == [first, second, third]
        assert refs(search=second[-3:]) == [second]
        assert refs(search="%") == [] and refs(reference="_") == []   # LIKE wildcards are text
        assert refs(agency="swindon borough council - adult social care") == [first, second, third]
        assert refs(agency="No Such Agency") == []
        assert refs(partnership="SSP") == [first, second, third] and refs(partnership="XYZ") == []
        row = next(iter_cases(s, CaseFilter(reference=first)))
        assert refs(overdue_at=row.next_due - timedelta(seconds=1)) == []
        assert first in refs(overdue_at=row.next_due)
        assert row.overdue(row.next_due) and not row.overdue(row.next_due - timedelta(seconds=1))
        assert count_cases(s, CaseFilter(state="open")) == 2


def test_cases_list_streams_json_and_json_lines(tmp_path, capsys, monkeypatch, sqlite_url: str) -> None:
    from tests.engine.conftest import open_harness

    h = open_harness(tmp_path, sqlite_url)
    try:
        refs = _open_cases(h, 3)
    finally:
        h.app.close()
    config = str(tmp_path / "mailflow.toml")
    assert config == str(write_config(tmp_path, sqlite_url))
    assert main(["--config", config, "cases", "list", "--format", "json", "--at", "2026-12-22T10:00"]) == 0
    out = capsys.readouterr().out
    listed = json.loads(out)
    assert [r["reference"] for r in listed] == refs
    # Written in chunks of rows, byte for byte what json.dumps of each row, one by one, would give.
    assert out == "[" + ",".join("\n  " + json.dumps(r) for r in listed) + "\n]\n"
    for chunk in (1, 2, 3):
        monkeypatch.setattr(cases_cmd, "_CHUNK", chunk)
        assert main(["--config", config, "cases", "list", "--format", "json", "--at", "2026-12-22T10:00"]) == 0
        assert capsys.readouterr().out == out
        assert main(["--config", config, "cases", "list", "--format", "jsonl"]) == 0
        assert capsys.readouterr().out == "".join(json.dumps(r) + "\n" for r in listed)
    assert main(["--config", config, "cases", "list", "--format", "json", "--state", "closed"]) == 0
    assert capsys.readouterr().out == "[\n]\n"
    assert set(listed[0]) == {"reference", "partnership", "policy", "state", "stage", "urgent", "opened_at",
                              "stage_started_at", "next_due", "next_step", "missing"}
    assert main(["--config", config, "cases", "list", "--format", "jsonl", "--ref", refs[1]]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["reference"] for line in lines] == [refs[1]]
    assert main(["--config", config, "cases", "list", "--state", "closed"]) == 0
    assert capsys.readouterr().out == "no cases\n"


def test_stopping_early_leaves_the_transaction_usable(h_any: Harness) -> None:
    refs = _open_cases(h_any, 3)
    with h_any.app.db.transaction() as s:
        stream = iter_cases(s, page_size=1)
        assert next(stream).reference == refs[0]
        stream.close()   # PostgreSQL: the streamed query is cancelled, within its savepoint
        assert [r.reference for r in iter_cases(s)] == refs
        assert count_cases(s) == 3


def _row(**kw: object) -> CaseRow:
    at = parse_instant("2026-07-01T09:30:00.250000")   # BST, with microseconds
    base: dict[str, object] = dict(id=1, reference="SSP-2026-0001", partnership="SSP", policy="swindon",
                                   state="open", stage=2, urgent=False, opened_at=at, stage_started_at=at,
                                   updated_at=at, missing=[], next_due=None, next_step=None, next_action=None)
    return CaseRow(**{**base, **kw})  # type: ignore[arg-type]


def test_json_rows_are_json_dumps_byte_for_byte() -> None:
    winter = parse_instant("2026-12-30T17:00:00")
    rows = [_row(), _row(urgent=True, next_due=winter, next_step="resolve", state="resolved", stage=1),
            _row(reference='Ré"f\\\n\t\u2028😀', partnership="Sé", policy="p\"o", state="x\x01",
                 next_step="st\u00e9p", missing=["adult_name", "d\u00e9tails \"quoted\""], next_due=winter),
            _row(opened_at=winter, missing=["one"])]
    for r in rows:
        assert cases_cmd.json_row(r) == json.dumps(cases_cmd.list_row(r))


def test_what_an_incomplete_form_lacks_comes_back_as_a_list(h_any: Harness) -> None:
    first, second = _open_cases(h_any, 2)
    with h_any.app.db.transaction() as s:
        s.scalars(select(Case).where(Case.reference == first)).one().missing = ["adult_name", "d\u00e9tails"]
        s.scalars(select(Case).where(Case.reference == second)).one().missing = []
    with h_any.app.db.transaction() as s:
        assert [r.missing for r in iter_cases(s)] == [["adult_name", "d\u00e9tails"], []]
        assert [r.missing for r in list_cases(s).rows] == [["adult_name", "d\u00e9tails"], []]


def test_without_a_chunked_stream_the_rows_are_the_same(h_any: Harness, monkeypatch) -> None:
    """PostgreSQL through another driver or an older libpq: a server-side cursor, the same rows."""
    from mailflow.queries import case_list

    _open_cases(h_any, 3)
    with h_any.app.db.transaction() as s:
        streamed = [(r.reference, r.opened_at, r.next_due, r.next_step, r.missing) for r in iter_cases(s)]
        monkeypatch.setattr(case_list, "_chunked_stream", lambda conn: False)
        fetched = [(r.reference, r.opened_at, r.next_due, r.next_step, r.missing) for r in iter_cases(s)]
    assert streamed == fetched and len(streamed) == 3
