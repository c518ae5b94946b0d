"""The case state machine: which trigger may move a case from which state to which.

    incomplete --complete--> open --resolve--> resolved --confirm--> closed
                              |  \\--escalate--> open (next stage)
    any live state --withdraw--> withdrawn;  resolved/closed/withdrawn --reopen--> open
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    INCOMPLETE = "incomplete"   # a draft: the form lacks what a case needs
    OPEN = "open"               # at stage N, deadlines running
    RESOLVED = "resolved"       # outcome agreed, written confirmation awaited
    CLOSED = "closed"           # outcome confirmed in writing
    WITHDRAWN = "withdrawn"


class InvalidTransition(ValueError):
    pass


_LIVE = (State.INCOMPLETE, State.OPEN, State.RESOLVED)

TRANSITIONS: dict[tuple[State, str], State] = {
    (State.INCOMPLETE, "complete"): State.OPEN,
    (State.OPEN, "escalate"): State.OPEN,
    (State.OPEN, "resolve"): State.RESOLVED,
    (State.RESOLVED, "confirm"): State.CLOSED,
    (State.RESOLVED, "escalate"): State.OPEN,     # the outcome fell through: next stage
    **{(s, "withdraw"): State.WITHDRAWN for s in _LIVE},
    **{(s, "reopen"): State.OPEN for s in (State.RESOLVED, State.CLOSED, State.WITHDRAWN)},
    # Changes that keep the state.
    **{(s, "urgent"): s for s in (State.INCOMPLETE, State.OPEN, State.RESOLVED)},
    **{(s, "extend"): s for s in (State.OPEN, State.RESOLVED)},
    **{(s, "assign"): s for s in _LIVE},
    **{(s, "note"): s for s in State},
}


def next_state(state: str, trigger: str) -> State:
    current = State(state)
    try:
        return TRANSITIONS[(current, trigger)]
    except KeyError:
        raise InvalidTransition(f"a case that is {current.value} cannot be {_past(trigger)}") from None


def allowed(state: str, trigger: str) -> bool:
    return (State(state), trigger) in TRANSITIONS


def _past(trigger: str) -> str:
    return {"complete": "completed", "escalate": "escalated", "resolve": "resolved",
            "confirm": "confirmed", "withdraw": "withdrawn", "reopen": "reopened",
            "urgent": "marked urgent", "extend": "extended", "assign": "assigned",
            "note": "noted"}.get(trigger, trigger)
