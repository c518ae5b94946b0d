"""Actions on a case from its page: escalate, resolve, note, assign, reopen, extend. Each calls
the function `mailflow cases ...` calls (mailflow/pipeline/cases.py) in one transaction, with the
signed-in person as the actor, so the audit trail and the notices are the same as from the CLI."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailflow.core.lifecycle import InvalidTransition
from mailflow.db.models import Case
from mailflow.db.store import find_case
from mailflow.pipeline import cases
from mailflow.pipeline.cases import Actor
from mailflow.web.console import Visit, route

ACTIONS = ("escalate", "resolve", "note", "assign", "reopen", "extend")
MAX_TEXT = 4000


def routes() -> list[BaseRoute]:
    return [Route("/cases/{reference}/{action}", act, methods=["POST"])]


class Refused(ValueError):
    pass


@route("team")
def act(v: Visit) -> Response:
    reference = v.request.path_params["reference"].upper()[:32]
    action = v.request.path_params["action"]
    if action not in ACTIONS:
        return v.refuse(404, f"There is no action {action[:40]!r}.")
    assert v.user is not None
    actor = Actor(v.user.actor)
    text = v.form.get("text", "").strip()[:MAX_TEXT]
    now = v.now
    try:
        with v.app.db.transaction() as s:
            case = find_case(s, reference, lock=v.app.db.is_postgres)
            if case is None:
                return v.refuse(404, f"There is no case {reference}.")
            rt = v.app.runtime(case.partnership)
            if action == "note":
                cases.note(s, case, actor, now, _needed(text, "the note"))
            elif action == "resolve":
                cases.resolve(s, rt, case, actor, now, _needed(text, "the outcome"))
            elif action == "escalate":
                cases.escalate(s, rt, case, actor, now, _needed(text, "the reason"), clock_start=now)
            elif action == "reopen":
                cases.reopen(s, rt, case, actor, now, text or "reopened by the business team")
            elif action == "assign":
                side = v.form.get("side", "")
                if side not in ("raiser", "other"):
                    raise Refused("choose the side: the raiser or a contact at this stage")
                email = v.form.get("email", "").strip()[:320]
                if "@" not in email:
                    raise Refused("give the contact's email address")
                cases.assign(s, rt, case, actor, now, side, email)
            elif action == "extend":
                days = _extension(case, rt.policy.max_extension_days, v.form.get("days", ""))
                cases.extend(s, rt, case, actor, now, days, _needed(text, "the reason"))
            done = f"{case.reference}: {action} recorded; the case is {case.state}, Stage {case.stage}."
    except (Refused, InvalidTransition, ValueError) as exc:
        return v.redirect(f"/cases/{reference}#act", notice=f"Not done: {exc}")
    v.console.dashboard_cache.clear()
    return v.redirect(f"/cases/{reference}", notice=done)


def _needed(text: str, what: str) -> str:
    if not text:
        raise Refused(f"write {what}")
    return text


def _extension(case: Case, limit: int, asked: str) -> int:
    """The days asked for, within what the policy still allows at this stage (checked here: the
    pipeline's refusal is a notice by email, which a console user does not need)."""
    try:
        days = int(asked)
    except ValueError:
        raise Refused("give the number of working days") from None
    used = sum(int(e.detail.get("days", 0)) for e in case.events
               if e.action == "extended" and e.detail.get("stage") == case.stage)
    if days <= 0 or used + days > limit:
        raise Refused(f"the policy allows at most {limit} working day(s) per stage; {used} already granted "
                      f"at Stage {case.stage}")
    return days
