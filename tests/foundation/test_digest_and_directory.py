"""The business-team digest (no personal data) and `mailflow directory check`."""

from __future__ import annotations

from pathlib import Path

from mailflow.app import App
from mailflow.cli.main import main
from mailflow.clock import FixedClock
from mailflow.directory import Directory
from mailflow.pipeline.digest import render_digests, send_digests
from mailflow.pipeline.ingest import ingest_one
from mailflow.resources import bundled_dir
from mailflow.sources.base import InboundMail
from tests.conftest import make_form, write_config


def test_digest_lists_cases_by_reference_without_personal_data(app: App, clock: FixedClock) -> None:
    rt = app.runtime()
    ingest_one(rt, InboundMail(make_form(), "test:1"))
    ingest_one(rt, InboundMail(make_form("zoe.sample@awp.nhs.example.org", omit=("disagreement_summary",)), "test:2"))
    clock.set(clock.now().replace(day=29, hour=9))
    digest = render_digests(app, clock.now())[0]
    assert "Open cases by stage: Stage 1: 1" in digest.text
    assert "Open: 1; resolved, awaiting written confirmation: 0; incomplete drafts: 1" in digest.text
    assert "SSP-2026-0001  Stage 1 resolve (escalate) due Wednesday 30 December 2026, 5pm" in digest.text
    for personal in ("Ada", "Testperson", "1951", "Example Road"):
        assert personal not in digest.text and personal not in digest.html and personal not in digest.subject
    assert digest.subject.startswith("[SSP] Escalations digest")
    assert send_digests(app, clock.now()) == 1


def test_digest_preview_command(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    preview = tmp_path / "digest.txt"
    assert main(["--config", str(config), "digest", "--at", "2026-12-21T08:00", "--preview", str(preview)]) == 0
    assert "escalations digest for Monday 21 December 2026, 8am" in preview.read_text()


def test_directory_matching_and_check(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    d = Directory.load(bundled_dir("examples") / "directory.example.toml")
    assert d.match_agency("GWH NHSFT").agency.name == "Great Western Hospitals NHS Foundation Trust"
    assert d.match_agency(email="someone@asc.swindon.example.org").agency.kind == "local_authority_adult_services"
    assert d.match_agency("Swindon Borough Council Adult Social Care").agency.kind == "local_authority_adult_services"
    assert d.match_agency("A Completely Different Agency").agency is None
    assert [c.email for c in d.contacts("chair", [])] == ["chair@ssp.example.org"]
    bad = tmp_path / "directory.toml"
    bad.write_text('[[agency]]\nname = "Nowhere Trust"\n[agency.contacts]\nmanager = ["Pat <not-an-address>"]\n')
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    config.write_text(config.read_text().replace(str(bundled_dir("examples") / "directory.example.toml"), str(bad)))
    assert main(["--config", str(config), "directory", "check"]) == 2  # unreadable: a configuration error
    assert "[[agency]] #1 contacts.manager[1]: 'not-an-address' is not an email address" in capsys.readouterr().err
    bad.write_text('[[agency]]\nname = "Nowhere Trust"\n[agency.contacts]\nmanager = ["Pat <pat@nowhere.example>"]\n')
    assert main(["--config", str(config), "directory", "check"]) == 1  # readable, with gaps to fix
    out = capsys.readouterr().out
    assert "'Nowhere Trust': no mail domains" in out and "no senior_manager contact" in out


def test_digest_html_preview_has_its_chart_inline(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    assert main(["--config", str(config), "ingest", str(_form_file(tmp_path)), "--at", "2026-12-21T10:00"]) == 0
    preview = tmp_path / "digest.html"
    assert main(["--config", str(config), "digest", "--at", "2026-12-22T08:00", "--preview", str(preview)]) == 0
    html = preview.read_text()
    assert 'src="data:image/png;base64,' in html and "cid:" not in html
    assert "Escalations digest for Tuesday 22 December 2026, 8am" in html


def _form_file(tmp_path: Path) -> Path:
    path = tmp_path / "form.eml"
    path.write_bytes(make_form())
    return path
