"""`mailflow cases list|show|escalate|resolve|note|assign|reopen`."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mailflow.cli.context import CliContext
from mailflow.core.humanize import local_iso, local_stamp
from mailflow.errors import ConfigError, MailflowError
from mailflow.queries.case_list import CaseFilter, CaseRow, iter_cases

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from mailflow.db.models import Case

# `cases show` and the actions import the pipeline inside their functions: `cases list` (a fresh
# process over 10^5 cases) needs none of it.


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    command = args.cases_command
    if command == "list":
        return _list(args, ctx)
    if command == "show":
        return _show(args, ctx)
    return _act(args, ctx)


def _list(args: argparse.Namespace, ctx: CliContext) -> int:
    """Streamed: rows are written as they are read, a page of cases at a time."""
    filters = CaseFilter(state=args.state, stage=getattr(args, "stage", None),
                         agency=getattr(args, "agency", None), reference=getattr(args, "ref", None),
                         overdue_at=ctx.clock.now() if getattr(args, "overdue", False) else None)
    out = sys.stdout
    with ctx.app.db.transaction() as s:
        rows = (_list_row(r) for r in iter_cases(s, filters))
        if args.format == "jsonl":
            for row in rows:
                out.write(json.dumps(row) + "\n")
        elif args.format == "json":
            # A JSON array written row by row: never the whole list in memory.
            out.write("[")
            for n, row in enumerate(rows):
                out.write(("," if n else "") + "\n  " + json.dumps(row))
            out.write("\n]\n")
        else:
            listed = 0
            for r in rows:
                listed += 1
                due = f"next due {when(r['next_due'])} ({r['next_step']})" if r["next_due"] else "nothing due"
                out.write(f"{r['reference']}  {r['state']:10} stage {r['stage']}{' URGENT' if r['urgent'] else ''}"
                          f"  {due}\n")
            if not listed:
                out.write("no cases\n")
    return 0


def _list_row(r: CaseRow) -> dict[str, Any]:
    """The keys `case_summary` gives a case (`cases show --format json` has them too)."""
    return {
        "reference": r.reference, "partnership": r.partnership, "policy": r.policy, "state": r.state,
        "stage": r.stage, "urgent": r.urgent, "opened_at": local_iso(r.opened_at),
        "stage_started_at": local_iso(r.stage_started_at),
        "next_due": local_iso(r.next_due) if r.next_due else None, "next_step": r.next_step,
        "missing": r.missing,
    }


def _show(args: argparse.Namespace, ctx: CliContext) -> int:
    from mailflow.pipeline.audit import reader, record_read

    with ctx.app.db.transaction() as s:
        case = _case(s, args.ref)
        story = _story(s, ctx, case)
        record_read(s, ctx.clock.now(), reader(getattr(args, "by", None)), "cases show", case=case)
    if args.format == "json":
        print(json.dumps(story, indent=2, default=str))
        return 0
    c = story["case"]
    print(f"{c['reference']}  {c['state']}  Stage {c['stage']}{' URGENT' if c['urgent'] else ''}  "
          f"(policy {c['policy']}, opened {when(c['opened_at'])})")
    if story["needs_a_person"]:
        print(f"  needs a person: {story['needs_a_person']['what']} (since "
              f"{when(story['needs_a_person']['since'])})")
    if c["missing"]:
        print(f"  incomplete: missing {', '.join(c['missing'])}")
    if story["outcome"]:
        print(f"  outcome: {story['outcome']}")
    _print_form(c["fields"])
    print("\nStage history")
    for h in story["stages"]:
        title = f" ({h['title']})" if h["title"] else ""
        print(f"  Stage {h['stage']}{title} from {when(h['from']) if h['from'] else '(not yet begun)'}: {h['why']}")
    print("\nDeadlines (why each is due when it is)")
    for d in story["deadlines"]:
        skipped = f"; skipped {', '.join(f'{x} {n}' for x, n in d['skipped'])}" if d["skipped"] else ""
        print(f"  [{d['state']:9}] Stage {d['stage']} {d['step']:8} {d['action']:11} "
              f"{when(d['due'])}\n      {d['rule']}{skipped}")
    print("\nSent")
    for m in story["sent"]:
        print(f"  {when(m['created_at'])}  {m['state']:7} {m['kind']:21} to {', '.join(m['to'])}")
    print("\nReceived")
    for m in story["received"]:
        print(f"  {when(m['received_at'])}  {m['kind'] or '?':10} from {m['sender']}  "
              f"{m['outcome']}" + (f" ({m['reason']})" if m["reason"] else ""))
    print("\nAudit trail")
    for e in story["events"]:
        detail = ", ".join(f"{k}={v}" for k, v in e["detail"].items() if v not in (None, "", [], {}))
        print(f"  {when(e['at'])}  {e['actor']:35} {e['action']}" + (f"  {detail}" if detail else ""))
    return 0


def when(iso: str) -> str:
    """Every time `cases list` and `cases show` print: UK local time with its zone."""
    return local_stamp(datetime.fromisoformat(iso))


def _print_form(fields: dict[str, Any]) -> None:
    """The form as the business team reads it: every canonical field in one order, then the rest."""
    from mailflow.core import form_fields

    width = max(len(label) for label in form_fields.LABELS.values())
    print("\nForm")
    for row in form_fields.canonical_rows(fields):
        _print_row(row.label, row.value or "(not given)", width)
    extra = form_fields.extra_rows(fields)
    if extra:
        print("\nOther fields on the form")
        for row in extra:
            _print_row(row.label, row.value or "(not given)", width)


def _print_row(label: str, value: str, label_width: int) -> None:
    lines = [w for line in value.splitlines() or [""] for w in textwrap.wrap(line, 96 - label_width) or [""]]
    pad = " " * (label_width + 4)
    print(f"  {label:{label_width}}  " + ("\n" + pad).join(lines))


def _story(s: Session, ctx: CliContext, case: Case) -> dict[str, Any]:
    from sqlalchemy import select

    from mailflow.case_view import case_summary
    from mailflow.db.models import Event, InboundMessage, OutboxMessage
    from mailflow.pipeline.case_file import stage_history
    from mailflow.pipeline.stalls import stall_of

    events = s.scalars(select(Event).where(Event.case_id == case.id).order_by(Event.id)).all()
    stages = [{"stage": h.stage, "title": h.title, "from": local_iso(h.started) if h.started else None,
               "why": h.why} for h in stage_history(events, ctx.app.policies.get(case.policy))]
    sent = s.scalars(select(OutboxMessage).where(OutboxMessage.case_id == case.id).order_by(OutboxMessage.id)).all()
    received = s.scalars(select(InboundMessage).where(InboundMessage.case_id == case.id)
                         .order_by(InboundMessage.id)).all()
    stall = stall_of(ctx.app.runtime(case.partnership), case)
    return {
        "case": {**case_summary(case), "fields": case.fields},
        "needs_a_person": {"what": stall.label, "since": local_iso(stall.since)} if stall else None,
        "outcome": case.outcome,
        "participants": [{"email": p.email, "role": p.role, "side": p.side, "agency": p.agency,
                          "stage": p.stage} for p in case.participants],
        "stages": stages,
        "deadlines": [{"stage": d.stage, "step": d.step, "action": d.action, "due": local_iso(d.due_at),
                       "state": d.state, "rule": d.rule, "skipped": d.skipped} for d in case.deadlines],
        "sent": [{"kind": m.kind, "subject": m.subject, "to": m.recipients, "state": m.state,
                  "created_at": local_iso(m.created_at),
                  "sent_at": local_iso(m.sent_at) if m.sent_at else None, "message_id": m.message_id}
                 for m in sent],
        "received": [{"received_at": local_iso(m.received_at), "kind": m.kind, "sender": m.sender,
                      "message_id": m.message_id, "outcome": m.outcome, "reason": m.reason}
                     for m in received],
        "events": [{"at": local_iso(e.at), "actor": e.actor, "action": e.action, "detail": e.detail}
                   for e in events],
    }


def _case(s: Session, ref: str) -> Case:
    from mailflow.db.store import find_case

    case = find_case(s, ref.upper(), lock=s.get_bind().dialect.name == "postgresql")
    if case is None:
        raise MailflowError(f"no case {ref}")
    return case


def _act(args: argparse.Namespace, ctx: CliContext) -> int:
    from mailflow.pipeline import cases
    from mailflow.pipeline.cases import Actor

    app = ctx.app
    now = ctx.clock.now()
    actor = Actor(f"cli:{args.by}")
    text = " ".join(getattr(args, "text", []) or [])
    with app.db.transaction() as s:
        case = _case(s, args.ref)
        rt = app.runtime(case.partnership)
        try:
            match args.cases_command:
                case "escalate":
                    cases.escalate(s, rt, case, actor, now, text, clock_start=now)
                case "resolve":
                    cases.resolve(s, rt, case, actor, now, text)
                case "note":
                    cases.note(s, case, actor, now, text)
                case "reopen":
                    cases.reopen(s, rt, case, actor, now, text or "reopened by the business team")
                case "assign":
                    cases.assign(s, rt, case, actor, now, args.side, args.email)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        print(f"{case.reference}: {case.state}, Stage {case.stage}")
    return 0
