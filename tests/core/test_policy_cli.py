"""`mailflow policy list | show | timeline`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from mailflow.cli import policy_cmd
from mailflow.cli.main import main
from mailflow.errors import ConfigError
from mailflow.resources import bundled_dir

BUNDLED = bundled_dir("policies")


def ctx_for(*dirs: Path) -> SimpleNamespace:
    return SimpleNamespace(config=SimpleNamespace(policy_dirs=list(dirs)))


def run(capsys: pytest.CaptureFixture[str], *argv: str, dirs: tuple[Path, ...] = (BUNDLED,)) -> str:
    parser_args = {"policy_command": argv[0]}
    if argv[0] != "list":
        parser_args["name"] = argv[1]
    if argv[0] == "timeline":
        rest = list(argv[2:])
        parser_args.update(start=rest[rest.index("--start") + 1], urgent="--urgent" in rest,
                           format="json" if "json" in rest else "text")
    assert policy_cmd.run(argparse.Namespace(**parser_args), ctx_for(*dirs)) == 0
    return capsys.readouterr().out


def test_timeline_json_is_exact(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "timeline", "swindon", "--start", "2026-12-21T10:00", "--format", "json")
    assert json.loads(out) == {
        "policy": "swindon", "start": "2026-12-21T10:00:00+00:00", "urgent": False,
        "steps": [
            {"stage": 1, "step": "resolve", "due": "2026-12-30T17:00:00+00:00", "notify": [], "chased": True},
            {"stage": 2, "step": "resolve", "due": "2027-01-07T17:00:00+00:00",
             "notify": ["business_team", "director_of_social_work"], "chased": True},
            {"stage": 3, "step": "resolve", "due": "2027-01-14T17:00:00+00:00",
             "notify": ["business_team"], "chased": True},
            {"stage": 4, "step": "resolve", "due": "2027-01-21T17:00:00+00:00",
             "notify": ["business_team"], "chased": True},
            {"stage": 4, "step": "final", "due": "2027-01-21T17:00:00+00:00",
             "notify": ["business_team", "chair"], "chased": True},
        ],
    }


def test_timeline_json_in_summer_has_bst_offsets(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "timeline", "shropshire", "--start", "2026-03-25T10:00", "--format", "json")
    data = json.loads(out)
    assert data["start"] == "2026-03-25T10:00:00+00:00"
    assert [s["due"] for s in data["steps"]] == [
        "2026-03-27T17:00:00+00:00", "2026-03-31T17:00:00+01:00", "2026-04-01T17:00:00+01:00",
        "2026-04-07T17:00:00+01:00", "2026-04-09T17:00:00+01:00", "2026-04-09T17:00:00+01:00"]


def test_timeline_start_with_offset_and_urgent(capsys: pytest.CaptureFixture[str]) -> None:
    # 17:30Z on 1 July is 18:30 BST: after close of business, received Thursday 2 July
    out = run(capsys, "timeline", "luton", "--start", "2026-07-01T17:30:00Z", "--urgent",
              "--format", "json")
    data = json.loads(out)
    assert data["urgent"] is True and data["start"] == "2026-07-01T18:30:00+01:00"
    assert data["steps"][0] == {"stage": 1, "step": "resolve", "due": "2026-07-03T17:00:00+01:00",
                                "notify": [], "chased": True}


def test_timeline_says_a_raise_step_is_met_by_the_form(capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(run(capsys, "timeline", "redbridge", "--start", "2026-12-21T10:00", "--format", "json"))
    assert [(s["step"], s["chased"]) for s in data["steps"] if s["stage"] == 1] == [
        ("raise", False), ("respond", True), ("resolve", True)]
    text = run(capsys, "timeline", "redbridge", "--start", "2026-12-21T10:00")
    raise_block = text.split("Stage 1 raise:")[1].split("\n\n")[0]
    assert "met when the form arrives" in raise_block
    assert text.count("never chased") == 1


def test_timeline_text_says_rule_and_skipped(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "timeline", "kent-medway", "--start", "2026-12-21T10:00")
    assert "start: Mon 21 Dec 2026 10:00 GMT" in out
    assert "Stage 1 respond: due Wed 30 Dec 2026 17:00 GMT" in out
    assert ("rule: respond within 5 working days of Stage 1 starting (received Mon 21 Dec 2026), "
            "by close of business 17:00") in out
    assert "skipped: Fri 25 Dec 2026 (Christmas Day); Mon 28 Dec 2026 (Boxing Day (observed))" in out
    assert "skipped: Fri 1 Jan 2027 (New Year's Day)" in out
    assert "Stage 4 final: due Thu 21 Jan 2027 17:00 GMT" in out
    assert "skipped: no bank holidays or closures" in out
    assert "notify: business_team, chair" in out


def test_timeline_text_explains_conditional_notices(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "timeline", "swindon", "--start", "2026-12-21T10:00")
    assert ("notify: business_team, director_of_social_work (before Stage 3, only for "
            "local_authority_adult_services)") in out


def test_list_and_show(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "list")
    for name in ("swindon", "kent-medway", "shropshire", "luton", "redbridge"):
        assert name in out
    out = run(capsys, "show", "redbridge")
    assert "Redbridge Safeguarding Adults Board" in out
    assert "STAGE" in out and "WHO ACTS" in out
    assert "respond 3wd from stage start" in out
    assert "raise 2wd from case start" in out
    assert "resolve 5wd from stage start, escalates" in out
    assert "final action: alert the business team and the chair when Stage 4's time runs out" in out
    assert ('Stage 3 resolve: "Following referral to senior managers, a resolution should be '
            'achieved within a further five working days') in out
    out = run(capsys, "show", "luton")
    assert "(local default)" in out and "commissioning_lead (at start)" in out
    out = run(capsys, "show", "kent-medway")
    assert "no timescale" in out and "[chair]" in out
    assert "5 working days after Stage 4 starts (local default)" in out


def test_a_partnership_policy_dir_is_listed_and_used(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    text = (BUNDLED / "swindon.toml").read_text().replace(
        'nation = "ENG"', 'nation = "SCT"').replace(
        'name = "Swindon Safeguarding Partnership"', 'name = "Brackenfold Adult Protection Committee"')
    (tmp_path / "brackenfold.toml").write_text(text)
    out = run(capsys, "list", dirs=(BUNDLED, tmp_path))
    assert "brackenfold" in out and "Brackenfold Adult Protection Committee" in out and "SCT" in out
    out = run(capsys, "timeline", "brackenfold", "--start", "2026-12-29T10:00", "--format", "json",
              dirs=(BUNDLED, tmp_path))
    # Scotland: 1 January and the 2 January holiday observed on Monday 4 January 2027
    assert json.loads(out)["steps"][0]["due"] == "2027-01-07T17:00:00+00:00"


def test_unknown_policy(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match=r"policy 'nowhere' not found \(known: kent-medway, "):
        run(capsys, "show", "nowhere")


def test_bad_start(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match="--start 'next tuesday'"):
        run(capsys, "timeline", "swindon", "--start", "next tuesday")


def test_through_main(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture[str]) -> None:
    """The real entry point with the embedded default configuration."""
    monkeypatch.delenv("MAILFLOW_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    code = main(["policy", "timeline", "redbridge", "--start", "2026-12-21T10:00", "--format", "json"])
    assert code == 0
    steps = json.loads(capsys.readouterr().out)["steps"]
    assert [(s["stage"], s["step"]) for s in steps] == [
        (1, "raise"), (1, "respond"), (1, "resolve"), (2, "resolve"), (3, "resolve"),
        (4, "resolve"), (4, "final")]
    assert main(["policy", "show", "nowhere"]) == 2
    assert "policy 'nowhere' not found" in capsys.readouterr().err
