"""The SIGKILL crash suite (issue 11, item 9): `mailflow run` reads a real IMAP mailbox (pymap)
and sends through a real SMTP server (aiosmtpd), both on loopback, while forms and replies
arrive and deadlines fall due (the clock is frozen per run with `--at` and moves on between
runs). It is killed with SIGKILL at random instants and started again, over and over. At the
end: every delivered message recorded exactly once, one case per form, and no notice queued or
delivered twice for the same case, kind, subject (stage and deadline) and recipients.

tests/foundation/test_crash_recovery.py kills at the one worst moment on purpose; this kills
anywhere. `MAILFLOW_CHAOS_KILLS` (20 here, 200 with `make chaos`) and `MAILFLOW_CHAOS_SEED`
choose the run; the figures are printed and written to var/chaos-report.json in the test's
directory.
"""

from __future__ import annotations

import email
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
from collections import Counter
from datetime import datetime, timedelta
from email.policy import default
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from mailflow.clock import parse_instant
from mailflow.db.models import Case, InboundMessage, LedgerEntry, OutboxMessage
from mailflow.demo_servers import start_imap_server, start_smtp_server
from tests.conftest import make_form, make_message, write_config

KILLS = int(os.environ.get("MAILFLOW_CHAOS_KILLS", "20"))
SEED = int(os.environ.get("MAILFLOW_CHAOS_SEED", "11"))
WORK_WINDOW = float(os.environ.get("MAILFLOW_CHAOS_WINDOW", "4.0"))   # seconds of work before the kill, at most
USER, PASSWORD = "safeguarding", "chaos-pw"
ADDRESS = "safeguarding@ssp.example.org"
ASC_MANAGER = "priya.examplewood@asc.swindon.example.org"
START = parse_instant("2026-12-21T09:00:00")
SPAN = timedelta(days=45)        # the frozen clock crosses this much in all: reminders, escalations, final alerts
STEP = min(SPAN / max(KILLS, 1), timedelta(days=2))   # ... moving on this much between runs
# Notices driven by replies may legitimately repeat (each reply can bring a case update).
REPLY_DRIVEN = {"case_update", "confirmation_receipt", "unverified_reply", "quarantine_notice", "delivery_failure",
                "watchdog_alert", "digest"}


def _config(tmp: Path, imap_port: int, smtp_port: int) -> Path:
    return write_config(
        tmp, f"sqlite:///{tmp / 'mailflow.db'}", extra="[daemon]\npoll_seconds = 1\nsweep_seconds = 1",
        mailbox=(f'kind = "imap"\nhost = "127.0.0.1"\nport = {imap_port}\ntls = "none"\nusername = "{USER}"\n'
                 'password_env = "MAILFLOW_CHAOS_IMAP_PASSWORD"\nidle = false\npoll_seconds = 1\ntimeout = 10'),
        transport=f'kind = "smtp"\nhost = "127.0.0.1"\nport = {smtp_port}\ntls = "none"\nauth = "none"')


def _mailflow(config: Path, *args: str) -> list[str]:
    exe = Path(sys.executable).with_name("mailflow")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mailflow"]
    return [*cmd, "--config", str(config), *args]


def _iso(at: datetime) -> str:
    return at.isoformat()


def _message_id(raw: bytes) -> str:
    return str(email.message_from_bytes(raw, policy=default)["Message-ID"]).strip()


@pytest.mark.slow
@pytest.mark.timeout(max(300, 20 * KILLS))   # each kill: up to WORK_WINDOW of work, a restart, the checks
def test_sigkill_at_random_instants_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    imap = start_imap_server(USER, PASSWORD)
    smtp = start_smtp_server()
    config = _config(tmp_path, imap.port, smtp.port)
    env = {**os.environ, "MAILFLOW_CHAOS_IMAP_PASSWORD": PASSWORD,
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    forms: list[str] = []           # Message-IDs of the forms delivered
    delivered: list[str] = []       # Message-IDs of everything delivered
    replied: set[str] = set()       # case references answered with #resolved
    kills = 0
    at = START
    try:
        for n in range(KILLS):
            at = START + n * STEP
            batch = [make_form(f"nurse{len(forms) + i}.example@gwh.nhs.example.org", date=at)
                     for i in range(rng.choice((0, 1, 1, 2)))]
            forms += [_message_id(raw) for raw in batch]
            batch += _replies(smtp.messages, replied, rng, at)
            if batch:
                imap.append_many(batch)
                delivered += [_message_id(raw) for raw in batch]
            kills += _run_and_kill(_mailflow(config, "run", "--at", _iso(at)), env, tmp_path, rng)
        # The last word: clean runs, a little later (a row a killed run was sending is claimed for 5 minutes).
        end = at + timedelta(hours=1)
        for _ in range(2):
            done = subprocess.run(_mailflow(config, "run", "--once", "--at", _iso(end)), env=env,
                                  capture_output=True, text=True, timeout=300, cwd=tmp_path)
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        figures = _check(tmp_path, imap, smtp.messages, forms, delivered)
        figures.update(kills=kills, seed=SEED, forms=len(forms), replies=len(delivered) - len(forms))
    finally:
        imap.stop()
        smtp.stop()
    print("chaos:", json.dumps(figures))
    (tmp_path / "var").mkdir(exist_ok=True)
    (tmp_path / "var" / "chaos-report.json").write_text(json.dumps(figures, indent=2))
    report = os.environ.get("MAILFLOW_CHAOS_REPORT")
    if report:
        Path(report).write_text(json.dumps(figures, indent=2))
    assert kills == KILLS


WORK = re.compile(r"mailflow\.(pipeline|sources)")   # a log line of real work: reading, applying, sweeping, sending


def _run_and_kill(cmd: list[str], env: dict[str, str], cwd: Path, rng: random.Random) -> int:
    """Start the daemon and SIGKILL it at a random instant: now and then while it starts, else in
    the seconds after it started, or just after its first piece of work (where the kills matter)."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=cwd)
    started, working = threading.Event(), threading.Event()
    tail: list[str] = []

    def watch() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            tail[:] = [*tail[-20:], line]
            if "daemon started" in line:
                started.set()
            if WORK.search(line):
                working.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    dice = rng.random()
    if dice < 0.2:
        life = rng.uniform(0.0, 1.5)
    elif dice < 0.5:
        assert started.wait(120), "".join(tail)
        life = rng.uniform(0.0, WORK_WINDOW)
    else:
        working.wait(30)    # nothing to do at all in 30 s: killed idle
        life = rng.uniform(0.0, 0.6)
    try:
        proc.wait(life)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        watcher.join(10)
        if os.environ.get("MAILFLOW_CHAOS_VERBOSE"):
            print(f"--- killed after {life:.2f} s:", *tail[-4:], sep="\n  ")
        return 1
    watcher.join(10)
    pytest.fail(f"`mailflow run` exited {proc.returncode} unkilled: {''.join(tail)}")


def _replies(sent: list, replied: set[str], rng: random.Random, at: datetime) -> list[bytes]:  # type: ignore[type-arg]
    """Now and then, the other agency's manager answers a notice in its thread: #resolved."""
    out = []
    for mail in sent:
        if ASC_MANAGER not in [r.lower() for r in mail.rcpt_tos]:
            continue
        msg = email.message_from_bytes(mail.raw, policy=default)
        ref = re.search(r"\[(SSP-\d{4}-\d{4})\]", str(msg["Subject"]))
        if ref is None or ref.group(1) in replied or rng.random() < 0.5:
            continue
        replied.add(ref.group(1))
        out.append(make_message(ASC_MANAGER, f"Re: {msg['Subject']}", "#resolved Agreed: the care package is in "
                                "place before discharge.", in_reply_to=str(msg["Message-ID"]),
                                references=str(msg["Message-ID"]), date=at))
        if len(out) >= 2:
            break
    return out


def _check(tmp: Path, imap, received: list, forms: list[str], delivered: list[str]) -> dict[str, int]:  # type: ignore[no-untyped-def,type-arg]
    engine = create_engine(f"sqlite:///{tmp / 'mailflow.db'}")
    with Session(engine) as s:
        inbound = s.scalars(select(InboundMessage)).all()
        cases = s.scalars(select(Case)).all()
        outbox = s.scalars(select(OutboxMessage)).all()
        ledger = s.scalars(select(LedgerEntry)).all()
        recorded = Counter(r.message_id for r in inbound)
        form_cases = Counter(r.case_id for r in inbound if r.message_id in set(forms))
        lost = [m for m in delivered if recorded[m] == 0]
        twice = [m for m, k in recorded.items() if k > 1]
        assert not lost, f"{len(lost)} delivered message(s) never recorded"
        assert not twice, f"{len(twice)} message(s) recorded more than once"
        assert imap.uids("INBOX") == [], "messages left in the watched folder"
        settled = Counter(_message_id(raw) for folder in ("Processed", "Quarantine") for raw in imap.messages(folder))
        assert not [m for m in delivered if settled[m] == 0], "a message left the inbox for nowhere"
        assert len(cases) == len(forms) and None not in form_cases and max(form_cases.values(), default=1) == 1
        # Quarantined only by the rules (a manager's burst of replies read at one frozen instant can pass the
        # per-sender hourly limit), never because a crash left something half done.
        broken = Counter((r.kind, r.reason) for r in inbound if r.outcome != "processed"
                         and not (r.reason or "").startswith("too many messages from this sender"))
        assert not broken, broken

        # One notice per case, kind, subject (its stage and the deadline it is about) and recipients: a
        # stage can legitimately remind twice (to resolve, then to confirm), never twice the same.
        notice = {r.message_id: (r.case_id, r.kind, r.subject, tuple(sorted(r.recipients)))
                  for r in outbox if r.case_id is not None and r.kind not in REPLY_DRIVEN}
        queued = Counter(notice.values())
        assert max(queued.values(), default=1) == 1, [k for k, v in queued.items() if v > 1]
        unsent = [r.message_id for r in outbox if r.state != "sent"]
        assert not unsent, f"{len(unsent)} notice(s) never sent"
        heads = [email.message_from_bytes(m.raw, policy=default) for m in received]
        by_id = Counter(str(h["Message-ID"]).strip() for h in heads)
        assert {r.message_id for r in outbox} <= set(by_id), "a notice marked sent never reached the server"
        # Besides the outbox, only the watchdog's direct alerts (a mailbox "not read" for the days the clock jumped).
        queued_ids = {r.message_id for r in outbox}
        strays = [str(h["Subject"]) for h in heads if str(h["Message-ID"]).strip() not in queued_ids]
        assert all(s.startswith("[mailflow] Attention") for s in strays), strays
        delivered_notices = Counter(notice[mid] for mid in by_id if mid in notice)
        assert max(delivered_notices.values(), default=1) == 1
        ledger_keys = Counter((e.case_id, e.stage, e.step, e.kind, e.due_at) for e in ledger)
        assert max(ledger_keys.values(), default=1) == 1
        return {"messages": len(delivered), "recorded": len(inbound), "lost": len(lost),
                "recorded_twice": len(twice),
                "quarantined_by_rate_limit": sum(1 for r in inbound if r.outcome != "processed"),
                "cases": len(cases), "duplicated_cases": len(cases) - len(forms),
                "notices": len(outbox), "duplicated_notices": sum(v - 1 for v in queued.values()),
                "ledger": len(ledger), "smtp_accepted": len(received),
                "resent_after_kill_mid_send": sum(v - 1 for v in by_id.values()), "watchdog_alerts": len(strays),
                "escalations": sum(1 for r in outbox if r.kind == "escalation"),
                "final_alerts": sum(1 for r in outbox if r.kind == "final_alert")}
