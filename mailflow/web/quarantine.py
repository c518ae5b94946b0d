"""The quarantine review (admin): the list, one message (its reason, what could be read of it),
release and discard, through the same functions as `mailflow quarantine ...`
(mailflow/pipeline/quarantine.py): each show and each action is an audit event naming who."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailflow.pipeline import quarantine
from mailflow.web.console import Visit, route

MAX_REASON = 2000


def routes() -> list[BaseRoute]:
    return [
        Route("/quarantine", quarantine_page, methods=["GET"]),
        Route("/quarantine/{inbound_id:int}", message_page, methods=["GET"]),
        Route("/quarantine/{inbound_id:int}/release", release, methods=["POST"]),
        Route("/quarantine/{inbound_id:int}/discard", discard, methods=["POST"]),
    ]


@route("admin")
def quarantine_page(v: Visit) -> Response:
    show_all = v.request.query_params.get("all") == "1"
    with v.app.db.transaction() as s:
        rows = quarantine.list_held(s, everything=show_all)
    return v.page("quarantine.html.j2", rows=list(reversed(rows)), show_all=show_all)


@route("admin")
def message_page(v: Visit) -> Response:
    assert v.user is not None
    inbound_id = int(v.request.path_params["inbound_id"])
    try:
        shown = quarantine.show(v.app, inbound_id, v.user.actor, v.now, via="web console: quarantine")
    except quarantine.QuarantineError as exc:
        return v.refuse(404, str(exc))
    return v.page("quarantine_message.html.j2", m=shown)


@route("admin")
def release(v: Visit) -> Response:
    assert v.user is not None
    inbound_id = int(v.request.path_params["inbound_id"])
    note = v.form.get("note", "").strip()[:MAX_REASON] or None
    try:
        done = quarantine.release(v.app, inbound_id, v.user.actor, v.now, note=note)
    except quarantine.QuarantineError as exc:
        return v.redirect(f"/quarantine/{inbound_id}", notice=f"Not released: {exc}")
    v.console.dashboard_cache.clear()
    where = f" ({done.case_reference})" if done.case_reference else ""
    return v.redirect("/quarantine", notice=f"Message #{inbound_id} released: {done.outcome}{where}.")


@route("admin")
def discard(v: Visit) -> Response:
    assert v.user is not None
    inbound_id = int(v.request.path_params["inbound_id"])
    reason = v.form.get("reason", "").strip()[:MAX_REASON]
    try:
        with v.app.db.transaction() as s:
            quarantine.discard(s, inbound_id, v.user.actor, reason, v.now)
    except quarantine.QuarantineError as exc:
        return v.redirect(f"/quarantine/{inbound_id}", notice=f"Not discarded: {exc}")
    v.console.dashboard_cache.clear()
    return v.redirect("/quarantine", notice=f"Message #{inbound_id} discarded.")
