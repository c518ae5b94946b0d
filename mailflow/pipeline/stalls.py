"""Cases that wait on a person and will not move by themselves. Derived, never stored: from the
case's state, its audit events and its participants, and the directory (who can be reached).

- nobody to route to: an open case whose current stage has no reachable contact (no directory
  contact of the stage's tier in the case's agencies, nobody assigned), until someone is assigned;
- an agency with nobody to route to: an open case that reaches one side but not the other at its
  current stage (a routing request was made there), until someone is assigned for that side;
- awaiting written confirmation, handed to the business team: a resolved case whose confirmation
  was chased and still did not come;
- awaiting the chair / the Board: an open case at the final stage after its final alert, until it
  is resolved, closed or withdrawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from mailflow.core.lifecycle import State
from mailflow.db.models import Case, Event
from mailflow.pipeline.notices import tier_people, unrouted_parties

if TYPE_CHECKING:
    from mailflow.app import PartnershipRuntime

NOBODY_TO_ROUTE_TO = "nobody to route to"
HANDED_OVER = "awaiting written confirmation — handed to the business team"
AWAITING_CHAIR = "awaiting the chair / the Board"
PARTY_UNROUTED = "an agency with nobody to route to (routing request unanswered)"
_STAGE_STARTS = ("opened", "escalated", "reopened")


@dataclass(frozen=True)
class Stall:
    kind: str   # nobody_to_route_to | party_unrouted | confirmation_handed_over | awaiting_chair
    label: str
    since: datetime


def reachable(rt: PartnershipRuntime, case: Case, stage: int) -> bool:
    """Someone can be sent the case at `stage`."""
    return bool(tier_people(rt, case, stage))


def stall_of(rt: PartnershipRuntime, case: Case) -> Stall | None:
    events = list(case.events)
    if case.state == State.OPEN and case.stage == rt.policy.last_stage:
        alert = _last(events, ("final_alert",))
        if alert is not None and _after(events, alert, _STAGE_STARTS) is None:
            return Stall("awaiting_chair", AWAITING_CHAIR, alert.at)
    if case.state == State.OPEN and not reachable(rt, case, case.stage):
        started = _last(events, _STAGE_STARTS)
        asked = (_after(events, started, ("needs_routing",), first=True) if started
                 else _last(events, ("needs_routing",)))
        return Stall("nobody_to_route_to", NOBODY_TO_ROUTE_TO, asked.at if asked else case.stage_started_at)
    if case.state == State.OPEN:
        # Only where a routing request was made at this stage: the directory is consulted for the
        # few cases that asked, not for every open case of a digest.
        started = _last(events, _STAGE_STARTS)
        asked = _after(events, started, ("needs_routing",), first=True) if started else None
        if asked is not None and unrouted_parties(rt, case, case.stage):
            return Stall("party_unrouted", PARTY_UNROUTED, asked.at)
    if case.state == State.RESOLVED:
        resolved = _last(events, ("resolved",))
        handed = _after(events, resolved, ("confirmation_handed_over",)) if resolved else None
        if handed is not None:
            return Stall("confirmation_handed_over", HANDED_OVER, handed.at)
    return None


def _last(events: list[Event], actions: tuple[str, ...]) -> Event | None:
    return next((e for e in reversed(events) if e.action in actions), None)


def _after(events: list[Event], anchor: Event, actions: tuple[str, ...], first: bool = False) -> Event | None:
    later = [e for e in events[events.index(anchor) + 1:] if e.action in actions]
    if not later:
        return None
    return later[0] if first else later[-1]
