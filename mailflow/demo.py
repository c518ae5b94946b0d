"""`mailflow demo`: the main job, self-contained, on real servers and a simulated clock.

A pymap IMAP server and an aiosmtpd SMTP server start on free loopback ports; example escalation
forms (invented people) are delivered into the inbox; the daemon's pass runs against them over
IMAP and SMTP while the clock jumps through two weeks of a case's life; every message the SMTP
server accepts is saved as an .eml file and summarised here.
"""

from __future__ import annotations

import email
import os
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from mailflow.app import App
from mailflow.clock import FixedClock, parse_instant
from mailflow.config import embedded_default, parse_config
from mailflow.core.humanize import long_instant
from mailflow.daemon import run_pass
from mailflow.demo_servers import LoopbackImapServer, LoopbackSmtpServer
from mailflow.pipeline.digest import render_digests
from mailflow.resources import bundled_dir

USER, ADDRESS = "safeguarding", "safeguarding@ssp.example.org"
RAISER = "Jo Example <jo.example@gwh.nhs.example.org>"
SENIOR_MANAGER = "Tom Samplefield <tom.samplefield@asc.swindon.example.org>"
OUTSIDER = "Someone Else <someone.else@elsewhere.example.net>"


def run_demo(out: Callable[[str], None] = print, workdir: Path | None = None, serve: bool = False) -> int:
    """The story; with `serve`, then the web console over its database until Ctrl-C."""
    workdir = (workdir or Path("var") / "demo").resolve()
    sent_dir = workdir / "sent"
    sent_dir.mkdir(parents=True, exist_ok=True)
    for old in sent_dir.glob("*.eml"):
        old.unlink()
    (workdir / "mailflow.db").unlink(missing_ok=True)
    password = secrets.token_hex(8)
    os.environ["MAILFLOW_DEMO_IMAP_PASSWORD"] = password

    imap = LoopbackImapServer(USER, password)
    smtp = LoopbackSmtpServer()
    clock = FixedClock(parse_instant("2026-12-21T09:30"))
    app = App.open(_config(workdir, imap.port, smtp.port), clock)
    seen = 0

    def step(title: str, at: str) -> None:
        clock.set(parse_instant(at))
        out(f"\n== {long_instant(clock.now())}: {title}")

    def daemon_pass() -> None:
        nonlocal seen
        report = run_pass(app)
        for outcomes in report.ingested.values():
            if outcomes:
                out("   mailbox: " + ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items())))
        for error in report.errors:
            out(f"   ERROR {error}")
        new = smtp.messages[seen:]
        seen += len(new)
        for i, mail in enumerate(new, start=seen - len(new) + 1):
            msg = email.message_from_bytes(mail.raw, policy=policy.default)
            (sent_dir / f"{i:03d}.eml").write_bytes(mail.raw)
            out(f"   sent {i:03d}: {msg['Subject']}")
            out(f"            to {', '.join(mail.rcpt_tos)}")
        if not new:
            out("   (nothing to send)")

    try:
        out("mailflow demo: the Swindon policy, an IMAP mailbox and an SMTP server on loopback "
            f"(IMAP 127.0.0.1:{imap.port}, SMTP 127.0.0.1:{smtp.port}); all people are invented.")

        step("three messages arrive: an escalation form, a form with details missing, a newsletter", "2026-12-21T10:00")
        imap.append(_form())
        imap.append(_incomplete_form())
        imap.append(_message("Partnership News <news@newsletter.example.net>", "December newsletter",
                             "Seasonal news from around the partnership.", {"List-Id": "<news.example.net>"}))
        daemon_pass()
        out("   SSP-2026-0001 is open at Stage 1; SSP-2026-0002 is an incomplete draft; the newsletter stays "
            "in the inbox untouched.")

        step("the raiser of the draft replies with the missing details", "2026-12-21T11:15")
        imap.append(_reply(app, "SSP-2026-0002", "incomplete_form", "Zoe Sample <zoe.sample@awp.nhs.example.org>",
                           "Other agency: Wiltshire Police\nBrief details of the professional disagreement: "
                           "Whether the police will attend the strategy meeting."))
        daemon_pass()

        step("someone outside the case tries to close it with a subject tag alone", "2026-12-22T09:00")
        imap.append(_message(OUTSIDER, "RE: [SSP-2026-0001] Stage 1", "#resolved nothing to see here"))
        daemon_pass()
        out("   Nothing changed: the business team is told of an unverified reply.")

        step("the daemon wakes the day before the Stage 1 deadline", "2026-12-29T09:00")
        daemon_pass()

        step("Stage 1 time runs out at close of business (Christmas and Boxing Day skipped)", "2026-12-30T17:00")
        daemon_pass()
        out("   SSP-2026-0001 moved to Stage 2 at 5pm on the dot; its Stage 2 clock starts at that deadline. "
            "The business team gets its copy of the pro-forma from Stage 2, as the policy says.")

        step("the Stage 2 senior manager replies from Outlook with #resolved", "2027-01-04T14:20")
        imap.append(_reply(app, "SSP-2026-0001", "escalation", SENIOR_MANAGER,
                           "#resolved Joint visit on 6 January; ASC to reassess the care package by 13 January.\n\n"
                           "Tom Samplefield\nService Manager"))
        daemon_pass()

        step("no written confirmation arrives within a further 5 working days", "2027-01-11T17:00")
        daemon_pass()

        step("the manager confirms in writing", "2027-01-12T10:00")
        imap.append(_reply(app, "SSP-2026-0001", "confirmation_request", SENIOR_MANAGER,
                           "#confirmed\nOutcome confirmed in writing to my counterpart today."))
        daemon_pass()

        step("the business team's digest", "2027-01-13T08:00")
        digest = render_digests(app, clock.now())[0]
        (workdir / "digest.txt").write_text(digest.text)
        out("   " + digest.text.strip().replace("\n", "\n   "))

        out("\nWhat happened to each case (mailflow cases show REF tells the whole story):")
        from mailflow.case_view import case_summary
        from mailflow.db.models import Case

        with app.db.transaction() as s:
            for case in s.query(Case).order_by(Case.id):
                summary = case_summary(case)
                out(f"   {summary['reference']}: {summary['state']}, Stage {summary['stage']}")
        out(f"\nThe {seen} messages the SMTP server accepted are in {sent_dir}/ (one .eml each); "
            f"the digest is {workdir / 'digest.txt'}; the database is {workdir / 'mailflow.db'}.")
        out(f"Inbox after the run: {len(imap.uids('INBOX'))} message(s) left (unrelated mail is not touched); "
            f"{len(imap.uids('Processed'))} in Processed.")
        if serve:
            from mailflow.web.demo_console import serve_console

            serve_console(app, clock, out)
        return 0
    finally:
        app.close()
        smtp.stop()
        imap.stop()


def _config(workdir: Path, imap_port: int, smtp_port: int) -> Any:
    base = embedded_default(workdir)
    p = base.partnership()
    data = {
        "mailflow": {"database_url": f"sqlite:///{workdir / 'mailflow.db'}", "var_dir": str(workdir),
                     "message_id_domain": "mailflow.demo.example"},
        "partnership": [{
            "name": "Swindon Safeguarding Partnership (demo)", "prefix": "SSP", "policy": "swindon",
            "address": ADDRESS, "business_team": list(p.business_team),
            "directory": str(bundled_dir("examples") / "directory.example.toml"),
            "mailbox": {"kind": "imap", "host": "127.0.0.1", "port": imap_port, "tls": "none",
                        "username": USER, "password_env": "MAILFLOW_DEMO_IMAP_PASSWORD", "idle": False},
            "transport": {"kind": "smtp", "host": "127.0.0.1", "port": smtp_port, "tls": "none", "auth": "none"},
        }],
    }
    return parse_config(data, None, base_dir=workdir)


def _message(sender: str, subject: str, body: str, headers: dict[str, str] | None = None,
             html: str | None = None, when: datetime | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, ADDRESS, subject
    msg["Date"] = format_datetime(when or parse_instant("2026-12-21T09:55"))
    msg["Message-ID"] = f"<{secrets.token_hex(8)}@demo.example.org>"
    for k, v in (headers or {}).items():
        msg[k] = v
    msg.set_content(body)
    if html:
        msg.add_alternative(html, subtype="html")
    return msg.as_bytes()


def _form() -> bytes:
    """The Swindon Stage 1/2 pro-forma pasted into Outlook as a table."""
    rows = [
        ("Name of adult:", "Ada Testperson"), ("DOB:", "03/04/1951"),
        ("Address:", "1 Example Road, Swindon SN1 0XX"),
        ("Name, Role and Agency of person completing this form:",
         "Jo Example, Ward Sister, Great Western Hospitals NHS Foundation Trust"),
        ("Name, Roles and Agency of others involved:",
         "Priya Examplewood, Team Manager, Swindon Borough Council - Adult Social Care"),
        ("Brief details of the professional disagreement:",
         "Discharge planned for Friday without the agreed care package; ASC say the threshold is not met."),
    ]
    text = "Case Resolution Stage 1 / 2 Pro-forma\n\n" + "\n".join(f"{k} {v}" for k, v in rows)
    text += "\nYour email: jo.example@gwh.nhs.example.org"
    cells = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows)
    html = (f"<html><body><p>Case Resolution Stage 1 / 2 Pro-forma</p><table border=1>{cells}"
            "<tr><td>Your email:</td><td>jo.example@gwh.nhs.example.org</td></tr></table></body></html>")
    return _message(RAISER, "Escalation - case resolution pro-forma", text, html=html)


def _incomplete_form() -> bytes:
    body = ("Case Resolution Stage 1 / 2 Pro-forma\n\nName of adult: Bob Placeholder\nDOB: 7 March 1948\n"
            "Name, Role and Agency of person completing this form: Zoe Sample, Care Coordinator, "
            "Avon & Wiltshire Partnership NHS Trust\nYour email: zoe.sample@awp.nhs.example.org\n")
    return _message("Zoe Sample <zoe.sample@awp.nhs.example.org>", "Escalation form", body)


def _reply(app: App, reference: str, kind: str, sender: str, text: str) -> bytes:
    """A reply from Outlook to the latest message of `kind` mailflow sent about the case."""
    from sqlalchemy import select

    from mailflow.db.models import Case, OutboxMessage

    with app.db.transaction() as s:
        case = s.scalars(select(Case).where(Case.reference == reference)).one()
        original = s.scalars(select(OutboxMessage).where(OutboxMessage.case_id == case.id,
                                                         OutboxMessage.kind == kind)
                             .order_by(OutboxMessage.id.desc())).first()
        assert original is not None, f"no {kind} was sent for {reference}"
        subject, message_id = original.subject, original.message_id
    quoted = ("\n\n________________________________\nFrom: Swindon Safeguarding Partnership <" + ADDRESS + ">\n"
              f"Sent: {format_datetime(app.clock.now() - timedelta(hours=2))}\nSubject: {subject}\n\n"
              "(the earlier message, quoted)\n")
    return _message(sender, f"RE: {subject}", text + quoted,
                    headers={"In-Reply-To": message_id, "References": message_id}, when=app.clock.now())
