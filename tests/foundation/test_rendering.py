"""Every template renders with text and HTML; HTML is autoescaped; subjects carry no personal data."""

from __future__ import annotations

from pathlib import Path

from mailflow.app import App
from mailflow.clock import FixedClock
from mailflow.composer import Envelope, compose
from mailflow.db.models import Case
from mailflow.pipeline.notices import case_context
from mailflow.rendering import Renderer
from mailflow.resources import bundled_dir

CASE_KINDS = ["acknowledgement", "incomplete_form", "escalation", "business_copy", "role_notice", "routing_request",
              "final_alert", "confirmation_request", "confirmation_receipt", "reminder", "case_update",
              "unverified_reply", "delivery_failure", "catch_up"]


def test_every_case_template_renders_without_personal_data(app: App, clock: FixedClock) -> None:
    now = clock.now()
    case = Case(reference="SSP-2026-0007", partnership="SSP", policy="swindon", state="open", stage=2, urgent=True,
                fields={"adult_name": "Ada <b>Testperson</b>", "raiser_agency": "GWH & Co",
                        "others_involved": [{"agency": "<script>x</script>"}]},
                missing=[], opened_at=now, stage_started_at=now, updated_at=now, outcome="Agreed <visit>")
    case.participants, case.deadlines = [], []
    rt = app.runtime()
    extra = {"missing": [{"name": "raiser_email", "label": "Your email"}], "previous_stage": 1, "reason": "r",
             "automatic": True, "role_label": "Director", "when": "before_next_stage", "problem": "p",
             "late": True, "change": "c", "detail": "d", "by": "b", "sender": "s@example.org",
             "reasons": ["not tied"], "commands": [], "failed_kind": "escalation", "recipients": ["x@example.org"],
             "error": "e", "step": "resolve", "due": now, "overdue": False,
             "passed": [{"stage": 1, "step_label": "Resolution", "due": now, "what": "escalated"}],
             "from_stage": 1, "noticed": now, "stall": "nobody to route to", "business": True}
    for kind in CASE_KINDS:
        mail = rt.renderer.render(kind, {"partnership": rt.config, **case_context(rt, case, **extra)})
        assert mail.subject.startswith("[SSP-2026-0007]"), kind
        assert "Ada" not in mail.subject and "Testperson" not in mail.subject
        assert "SSP-2026-0007" in mail.text and "SSP-2026-0007" in mail.html, kind
        assert "<script>" not in mail.html and "<b>Testperson" not in mail.html, kind
    business = rt.renderer.render("business_copy", {"partnership": rt.config, **case_context(rt, case, **extra)})
    assert "&lt;script&gt;" in business.html and "GWH &amp; Co" in business.html


def test_partnership_templates_override_bundled(tmp_path: Path) -> None:
    (tmp_path / "acknowledgement.subject.j2").write_text("[{{ case.reference }}] Received, thank you")
    renderer = Renderer([tmp_path, bundled_dir("templates")])
    assert "acknowledgement" in renderer.kinds() and "_base" not in renderer.kinds()
    assert renderer.env.get_template("acknowledgement.subject.j2").filename.startswith(str(tmp_path))


def test_composed_headers_are_loop_safe(clock: FixedClock) -> None:
    from mailflow.rendering import RenderedMail

    msg = compose(RenderedMail("[SSP-2026-0001] Stage 1: x", "text", "<p>html</p>"),
                  Envelope(from_addr="a@example.org", to=["b@example.org"], message_id="<SSP-2026-0001.1@x>",
                           subject_prefix="[secure]"), clock.now())
    assert msg["Subject"] == "[secure] [SSP-2026-0001] Stage 1: x"
    assert msg["Auto-Submitted"] == "auto-generated" and msg["X-Auto-Response-Suppress"] == "OOF, AutoReply"
    assert b"\r\n" in msg.as_bytes() and b"\n\n" not in msg.as_bytes().replace(b"\r\n", b"")
