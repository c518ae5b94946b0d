"""`mailflow parse FILE.eml`: classify and extract one message, touching no database."""

from __future__ import annotations

import argparse
import json
from typing import Any

from mailflow.cli.context import CliContext
from mailflow.errors import MailflowError


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    from parsers import ParseLimits
    from parsers.worker import parse_in_worker

    # Bounded as the daemon bounds a message: read no more than the size limit allows (a bigger
    # file is refused as too large), parse in the worker process, stopped after the time limit.
    limits = ParseLimits()
    try:
        with open(args.file, "rb") as fh:
            raw = fh.read(limits.max_message_bytes + 1)
    except OSError as exc:
        raise MailflowError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    parsed = parse_in_worker(raw, limits)
    data = parsed.to_json()
    if getattr(args, "format", "text") == "json":
        print(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    else:
        print(format_text(data))
    return 0


def format_text(d: dict[str, Any]) -> str:
    """A readable summary of the JSON shape."""
    lines = [f"kind:      {d['kind']}" + (" (automated)" if d.get("automated") else "")]
    if d.get("rejected"):
        lines.append(f"rejected:  {d['rejected']}")
    lines.append(f"from:      {d.get('from_name') or ''} <{d.get('from') or ''}>".strip())
    lines.append(f"subject:   {d.get('subject') or ''}")
    lines.append(f"message:   {d.get('message_id') or '-'}")
    if d.get("case_ref"):
        lines.append(f"case:      {d['case_ref']} (from {d.get('case_ref_source')})")
    if d.get("reply_token"):
        lines.append(f"token:     {d['reply_token']}")
    if d.get("form"):
        lines.append(f"form:      {d['form']}")
    if d.get("bounced_message_id") or d.get("bounced_recipients"):
        lines.append(f"bounced:   {d.get('bounced_message_id') or '?'} -> "
                     f"{', '.join(d.get('bounced_recipients') or []) or '?'}")
    if d.get("auth"):
        lines.append("auth:      " + " ".join(f"{k}={v}" for k, v in d["auth"].items()))
    for c in d.get("commands") or []:
        text = (c.get("text") or "").replace("\n", " ")
        lines.append(f"command:   #{c['name']} {text}".rstrip())
    if d.get("fields"):
        lines.append("fields:")
        for k, v in d["fields"].items():
            if k == "others_involved" and isinstance(v, list):
                for p in v:
                    parts = [p.get(x) for x in ("name", "role", "agency", "email") if p.get(x)]
                    lines.append(f"  others_involved: {', '.join(parts)}")
            else:
                lines.append(f"  {k}: {str(v).replace(chr(10), ' / ')}")
    if d.get("missing"):
        lines.append("missing:   " + ", ".join(d["missing"]))
    for w in d.get("warnings") or []:
        lines.append(f"warning:   {w}")
    return "\n".join(lines)
