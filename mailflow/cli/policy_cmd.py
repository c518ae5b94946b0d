"""`mailflow policy list | show NAME | timeline NAME --start ISO [--urgent] [--format json]`."""

from __future__ import annotations

import argparse
import json
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

from mailflow.cli.context import CliContext
from mailflow.clock import parse_instant
from mailflow.core.calendar import NATIONS
from mailflow.core.deadlines import DeadlineSpec, timeline
from mailflow.core.policy import Policy, Stage, Step, load_policies
from mailflow.errors import ConfigError


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    policies = load_policies(_dirs(ctx))
    if args.policy_command == "list":
        print(render_list(policies))
        return 0
    policy = _find(policies, args.name)
    if args.policy_command == "show":
        print(render_show(policy))
        return 0
    try:
        start = parse_instant(args.start)
    except ValueError as exc:
        raise ConfigError(f"--start {args.start!r}: not an ISO 8601 instant ({exc})") from None
    specs = timeline(policy, start, args.urgent)
    if args.format == "json":
        print(json.dumps(timeline_json(policy, start, args.urgent, specs), indent=2))
    else:
        print(render_timeline(policy, start, args.urgent, specs))
    return 0


def _dirs(ctx: CliContext) -> list[Path]:
    return list(ctx.config.policy_dirs)


def _find(policies: dict[str, Policy], name: str) -> Policy:
    if name not in policies:
        known = ", ".join(sorted(policies)) or "none"
        raise ConfigError(f"policy {name!r} not found (known: {known})")
    return policies[name]


# --- rendering (pure: tested directly) ---------------------------------------------------------


def _local(policy: Policy, instant: datetime) -> datetime:
    return policy.calendar.local(instant)


def _when(policy: Policy, instant: datetime) -> str:
    t = _local(policy, instant)
    return f"{t:%a} {t.day} {t:%b %Y %H:%M} {t.tzname()}"


def _lines(cell: str | list[str], width: int) -> list[str]:
    """A list is already one line per item; a string wraps at `width` (0: never)."""
    if isinstance(cell, list):
        return cell or [""]
    if not width:
        return [cell]
    return textwrap.wrap(cell, width, break_on_hyphens=False, break_long_words=False) or [""]


def _table(headers: list[str], rows: list[list[Any]], wrap: int = 0) -> str:
    """Columns padded to width; string cells longer than `wrap` wrap onto extra lines."""
    cells = [[_lines(c, wrap) for c in row] for row in rows]
    widths = [max([len(h)] + [len(line) for row in cells for line in row[i]])
              for i, h in enumerate(headers)]

    def line(parts: list[str]) -> str:
        return "  ".join(p.ljust(w) for p, w in zip(parts, widths, strict=True)).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    for row in cells:
        for k in range(max(len(c) for c in row)):
            out.append(line([c[k] if k < len(c) else "" for c in row]))
    return "\n".join(out)


def render_list(policies: dict[str, Policy]) -> str:
    rows = [[p.name, p.partnership, str(len(p.stages)), p.calendar.nation, str(p.source)]
            for p in policies.values()]
    return _table(["NAME", "PARTNERSHIP", "STAGES", "NATION", "FILE"], rows)


def _step_text(step: Step) -> str:
    if step.days is None:
        return f"{step.name}: no timescale"
    origin = {"stage_start": "stage start", "case_start": "case start", "resolution": "resolution"}
    text = f"{step.name} {step.days}wd from {origin[step.counts_from]}"
    if step.escalates:
        text += ", escalates"
    if step.local_default:
        text += " (local default)"
    return text


def _urgent_text(step: Step) -> str:
    if step.urgent_days is None or step.days is None:
        return "-"
    return f"{step.name} {min(step.days, step.urgent_days)}wd" + (
        " (local default)" if step.urgent_local_default else "")


def _copied(stage: Stage) -> list[str]:
    parts = ["business_team"] if stage.copy_business_team else []
    for n in stage.notify:
        when = "before next stage" if n.when == "before_next_stage" else "at start"
        parts.append(f"{n.role} ({when})")
        if n.only_for:
            parts.append(f"  only for {n.only_for}")
    return parts or ["-"]


def render_show(policy: Policy) -> str:
    cal = policy.calendar
    closures = ", ".join(d.isoformat() for d in sorted(cal.closures)) or "none"
    head = [
        f"{policy.partnership}: {policy.title}",
        f"policy {policy.name} ({policy.source})",
        f"source: {policy.document}" if policy.document else "",
        f"mailbox: {policy.mailbox}",
        f"calendar: {NATIONS[cal.nation]} ({cal.nation}) bank holidays; "
        f"extra closures: {closures}; "
        f"working day {cal.opens:%H:%M}-{cal.close_of_business:%H:%M} {cal.tz}",
        f"reminders: {policy.reminder_days_before} working day(s) before each deadline",
        "",
    ]
    rows = []
    for stage in policy.stages:
        steps = [_step_text(st) for st in stage.steps] or ["no timescale"]
        urgent = [_urgent_text(st) for st in stage.steps]
        rows.append([str(stage.number), stage.title, f"{stage.acting_role} [{stage.tier}]", steps,
                     urgent, _copied(stage)])
    table = _table(["STAGE", "TITLE", "WHO ACTS [TIER]", "WORKING DAYS", "URGENT",
                    "COPIED / NOTIFIED"], rows, wrap=24)
    final = policy.final
    if final.days is None:
        when = f"when Stage {policy.last_stage}'s time runs out"
    else:
        when = f"{final.days} working days after Stage {policy.last_stage} starts"
    tail = [
        "",
        f"final action: {final.kind} the business team and the chair {when}"
        + (" (local default)" if final.local_default else ""),
        "wd: working days. Urgent cases use the urgent timescale (\"whichever is less\").",
        "",
        "Where the timescales come from:",
        *_sources(policy),
    ]
    return "\n".join([line for line in head if line != ""] + [""] + [table] + tail)


def _sources(policy: Policy) -> list[str]:
    lines = []
    for stage in policy.stages:
        for step in stage.steps:
            mark = " [local default]" if step.local_default else ""
            lines.append(f"  Stage {stage.number} {step.name}{mark}: \"{step.quote}\"")
            if step.urgent_quote:
                mark = " [local default]" if step.urgent_local_default else ""
                lines.append(f"    urgent{mark}: \"{step.urgent_quote}\"")
        for n in stage.notify:
            lines.append(f"  Stage {stage.number} notify {n.role}: \"{n.quote}\"")
    mark = " [local default]" if policy.final.local_default else ""
    lines.append(f"  final action{mark}: \"{policy.final.quote}\"")
    return lines


def _skipped_text(spec: DeadlineSpec) -> str:
    return "; ".join(f"{d:%a} {d.day} {d:%b %Y} ({name})" for d, name in spec.skipped)


def _notify_text(policy: Policy, spec: DeadlineSpec) -> str:
    """Role keys, with when and for whom a conditional notification applies."""
    parts = []
    notes = {n.role: n for n in policy.stage(spec.stage).notify} if spec.step != "final" else {}
    for role in spec.notify:
        n = notes.get(role)
        extra = []
        if n is not None and n.when == "before_next_stage":
            extra.append(f"before Stage {spec.stage + 1}")
        if n is not None and n.only_for:
            extra.append(f"only for {n.only_for}")
        parts.append(f"{role} ({', '.join(extra)})" if extra else role)
    return ", ".join(parts)


def render_timeline(policy: Policy, start: datetime, urgent: bool,
                    specs: list[DeadlineSpec]) -> str:
    cal = policy.calendar
    lines = [
        f"{policy.partnership} ({policy.name}): deadlines if nothing is resolved",
        f"start: {_when(policy, start)}{' (urgent)' if urgent else ''}; "
        f"{NATIONS[cal.nation]} bank holidays; close of business {cal.close_of_business:%H:%M}",
    ]
    for spec in specs:
        lines += [
            "",
            f"Stage {spec.stage} {spec.step}: due {_when(policy, spec.due)}",
            f"  rule: {spec.rule}",
            *(["  met when the form arrives (the form is the raising): never chased"]
              if spec.met_on_opening else []),
            f"  skipped: {_skipped_text(spec) or 'no bank holidays or closures'}",
        ]
        if spec.notify:
            lines.append(f"  notify: {_notify_text(policy, spec)}")
    return "\n".join(lines)


def timeline_json(policy: Policy, start: datetime, urgent: bool, specs: list[DeadlineSpec]) -> dict[str, Any]:
    return {
        "policy": policy.name,
        "start": _local(policy, start).isoformat(),
        "urgent": urgent,
        "steps": [
            {"stage": s.stage, "step": s.step, "due": _local(policy, s.due).isoformat(),
             "notify": list(s.notify), "chased": not s.met_on_opening}
            for s in specs
        ],
    }
