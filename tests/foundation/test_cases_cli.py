"""`mailflow cases` for the business team: `show` lists the form's every field with a label, in
one order; `list --state` takes only real states; `list` and `show` write times alike (UK local
time with its zone). Invented people only."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest

from mailflow.cli.main import main
from mailflow.core import form_fields
from mailflow.core.humanize import local_stamp
from mailflow.core.lifecycle import State
from tests.conftest import make_form, write_config
from tests.engine.test_escalation_content import docx_form, docx_message

STAMP = re.compile(r"\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2} (?:GMT|BST)\b")


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, f"sqlite:///{tmp_path / 'cli.db'}")


def ingest(capsys: pytest.CaptureFixture[str], config: Path, raw: bytes, at: str) -> None:
    path = config.parent / f"form-{at[:10]}.eml"
    path.write_bytes(raw)
    code, _, err = cli(capsys, "--config", str(config), "ingest", str(path), "--at", at)
    assert code == 0, err


def test_show_lists_every_form_field_with_a_label_in_a_stable_order(
        capsys: pytest.CaptureFixture[str], config: Path) -> None:
    ingest(capsys, config, docx_message(docx_form()), "2026-12-21T10:00")
    code, out, err = cli(capsys, "--config", str(config), "cases", "show", "SSP-2026-0001")
    assert code == 0, err
    form = out.split("\nForm\n", 1)[1].split("\nStage history\n", 1)[0]
    rows = form_fields.canonical_rows({})
    positions = [form.find(f"\n  {row.label} ") if i else form.find(f"  {row.label} ") for i, row in enumerate(rows)]
    assert -1 not in positions, [r.label for r, p in zip(rows, positions, strict=True) if p == -1]
    assert positions == sorted(positions)          # every canonical field, in the one order
    shown = {line[2:38].strip(): line[38:].strip() for line in form.splitlines() if line.startswith("  ")}
    assert shown["Adult's name"] == "Bea Fictional"
    assert shown["Adult's identifier"] == "999 000 1234"
    assert shown["Adult's date of birth"] == "14 February 1948"      # a date in words
    assert shown["Raising agency"] == "Great Western Hospitals NHS Foundation Trust"
    assert shown["Others involved (receiving agency)"] == "Swindon Borough Council - Adult Social Care"
    assert shown["Resolved"] == "No"
    assert shown["Category of disagreement"] == "(not given)"
    assert shown["Why not resolved, raised to whom"].startswith("The team managers met")
    # A field of the form beyond the canonical ones, after them.
    extra = form.split("\nOther fields on the form\n", 1)[1]
    assert "  Actions taken" in extra and "Joint visit on 10/12/2026" in extra


def test_list_state_takes_only_the_lifecycle_states(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    code, _, err = cli(capsys, "--config", str(config), "cases", "list", "--state", "pending")
    assert code == 2 and "invalid choice: 'pending'" in err
    code, help_text, _ = cli(capsys, "cases", "list", "--help")
    assert code == 0
    for state in State:
        assert state.value in help_text
    code, out, _ = cli(capsys, "--config", str(config), "cases", "list", "--state", "closed")
    assert code == 0 and out.strip() == "no cases"


@pytest.mark.parametrize(("opened", "opened_at", "due"), [
    # `--at` without an offset is UK time.
    ("2026-12-21T10:00", "Mon 21 Dec 2026 10:00 GMT", "Wed 30 Dec 2026 17:00 GMT"),   # Christmas skipped
    ("2026-07-06T10:00", "Mon 06 Jul 2026 10:00 BST", "Mon 13 Jul 2026 17:00 BST"),   # summer time
])
def test_list_and_show_write_times_the_same_way(capsys: pytest.CaptureFixture[str], config: Path,
                                                opened: str, opened_at: str, due: str) -> None:
    ingest(capsys, config, make_form(), opened)
    _, listed, _ = cli(capsys, "--config", str(config), "cases", "list")
    _, shown, _ = cli(capsys, "--config", str(config), "cases", "show", "SSP-2026-0001")
    assert f"next due {due} (resolve)" in listed
    assert f"escalate    {due}" in shown
    assert f"opened {opened_at})" in shown
    for text in (listed, shown):
        assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", text)   # no ISO instants on the command line
    times = STAMP.findall(shown)
    assert len(times) >= 6 and due in times


def test_local_stamp_names_the_zone_in_force() -> None:
    assert local_stamp(datetime.fromisoformat("2027-01-07T17:00:00+00:00")) == "Thu 07 Jan 2027 17:00 GMT"
    assert local_stamp(datetime.fromisoformat("2026-07-13T16:00:00+00:00")) == "Mon 13 Jul 2026 17:00 BST"
