"""A case at a glance: the summary `mailflow cases list|show` and the demo print (JSON-ready)."""

from __future__ import annotations

from typing import Any

from mailflow.core.humanize import local_iso
from mailflow.db.models import Case


def case_summary(c: Case) -> dict[str, Any]:
    """Reference, state, stage, urgency, when it opened and its stage began, the next pending step
    (reminders aside) and the fields the form is missing; instants in local ISO form."""
    pending = sorted((d for d in c.deadlines if d.state == "pending" and d.action != "remind"),
                     key=lambda d: d.due_at)
    return {
        "reference": c.reference, "partnership": c.partnership, "policy": c.policy, "state": c.state,
        "stage": c.stage, "urgent": c.urgent, "opened_at": local_iso(c.opened_at),
        "stage_started_at": local_iso(c.stage_started_at),
        "next_due": local_iso(pending[0].due_at) if pending else None,
        "next_step": pending[0].step if pending else None, "missing": list(c.missing),
    }
