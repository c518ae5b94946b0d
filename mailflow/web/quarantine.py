"""The quarantine review (admin): each message mailflow could not read or act on, and why.
Every message shown is a read of personal data on the audit trail (senders are people)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import load_only
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailflow.db.models import InboundMessage
from mailflow.pipeline.audit import record_read
from mailflow.web.console import Visit, route

LIMIT = 100


def routes() -> list[BaseRoute]:
    return [Route("/quarantine", quarantine_page, methods=["GET"])]


@route("admin")
def quarantine_page(v: Visit) -> Response:
    assert v.user is not None
    with v.app.db.transaction() as s:
        rows = s.scalars(select(InboundMessage)
                         .options(load_only(InboundMessage.id, InboundMessage.partnership, InboundMessage.received_at,
                                            InboundMessage.sender, InboundMessage.size, InboundMessage.kind,
                                            InboundMessage.reason))
                         .where(InboundMessage.outcome == "quarantined")
                         .order_by(InboundMessage.received_at.desc()).limit(LIMIT)).all()
        for row in rows:
            record_read(s, v.now, v.user.actor, "web console: quarantine", inbound=row)
    return v.page("quarantine.html.j2", rows=rows, limit=LIMIT)
