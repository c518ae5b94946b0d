"""`make run`'s demo runs end to end on real loopback servers and tells its story."""

from __future__ import annotations

from pathlib import Path

from mailflow.demo import run_demo


def test_demo_shows_the_whole_flow(tmp_path: Path) -> None:
    lines: list[str] = []
    assert run_demo(lines.append, workdir=tmp_path, serve=False) == 0
    story = "\n".join(lines)
    assert "[SSP-2026-0001] Stage 1: escalation received" in story
    assert "[SSP-2026-0002] Escalation form incomplete" in story
    assert "A reply could not be verified" in story
    assert "[SSP-2026-0001] Stage 2: escalated to you" in story
    assert "[SSP-2026-0001] Stage 2: copy for the business team" in story
    assert "please confirm the outcome in writing" in story
    assert "written confirmation overdue" in story
    assert "SSP-2026-0001: closed, Stage 2" in story
    assert "escalations digest" in story
    assert "ERROR" not in story
    sent = sorted((tmp_path / "sent").glob("*.eml"))
    assert len(sent) >= 15
    assert (tmp_path / "digest.txt").read_text().count("Ada") == 0


def test_demo_without_its_extra_says_which_to_install(monkeypatch, capsys) -> None:
    import importlib.util

    from mailflow.cli.main import main

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pymap" else real_find_spec(name, *a))
    assert main(["demo"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == ("mailflow: the demo needs pymap (the [demo] extra): "
                   "pip install 'mailflow[demo]', or `make run` from a clone")
