"""A case's form fields as a person reads them: a label for each canonical field, one stable
order, and values written out (dates in words, Yes/No, one person a line).

The canonical names are the parser's (`parsers.proforma.CANONICAL`); fields a form had beyond them
are kept under `fields["extra"]` and shown after them with their names made readable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mailflow.core.humanize import long_date
from parsers.proforma import CANONICAL

# The order the business team reads a form in: who, who raised it, with whom, what about, what
# has been tried, the outcome, the learning. Canonical fields not named here follow, in the
# parser's order, under a label made from their name.
LABELS: dict[str, str] = {
    "adult_name": "Adult's name",
    "adult_identifier": "Adult's identifier",
    "adult_dob": "Adult's date of birth",
    "adult_address": "Adult's address",
    "adult_at_risk": "Adult at immediate risk of harm",
    "raiser_name": "Raised by",
    "raiser_role": "Raiser's role",
    "raiser_agency": "Raising agency",
    "raiser_email": "Raiser's email",
    "raiser_phone": "Raiser's phone",
    "others_involved": "Others involved (receiving agency)",
    "category": "Category of disagreement",
    "disagreement_summary": "Summary of the disagreement",
    "stage": "Stage named on the form",
    "date_raised": "Date first raised",
    "reason_unresolved": "Why not resolved, raised to whom",
    "resolved": "Resolved",
    "agreed_outcome": "Agreed outcome",
    "learning_agency": "Learning for the agencies",
    "learning_partnership": "Learning for the wider partnership",
    "training_needed": "Staff training needed",
    "new_protocol": "New protocol needed",
    "subgroup_discussion": "Further discussion at a subgroup",
}

# What has been tried so far: the form's fields for steps taken, in the order they happened.
TRIED: tuple[str, ...] = (
    "date_raised", "extra.date_of_discussion", "extra.methodology", "reason_unresolved",
    "extra.further_actions", "extra.actions_taken", "extra.steps_taken",
)

EXTRA_LABELS: dict[str, str] = {
    "date_of_discussion": "Date of discussion or meeting about the difference",
    "methodology": "How resolution was attempted",
    "further_actions": "Actions taken",
    "actions_taken": "Actions taken",
    "steps_taken": "Steps taken",
    "time_to_resolve": "Time taken to resolve",
    "resolved_at": "Difference resolved at",
    "completed_by": "Form completed by",
    "date_received_by_ssp": "Date received by the partnership manager",
    "referred_to_chair": "Referred to the partnership chair",
    "chair_outcome": "Issues referred to the chair / outcome",
}


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    value: str          # "" when the form did not give it


def canonical_order() -> list[str]:
    return [*LABELS, *(k for k in CANONICAL if k not in LABELS)]


def label_of(key: str) -> str:
    if key.startswith("extra."):
        name = key[6:]
        return EXTRA_LABELS.get(name, name.replace("_", " ").capitalize())
    return LABELS.get(key, key.replace("_", " ").capitalize())


def value_of(fields: Mapping[str, Any], key: str) -> Any:
    if key.startswith("extra."):
        extra = fields.get("extra")
        return extra.get(key[6:]) if isinstance(extra, Mapping) else None
    return fields.get(key)


def person(p: Mapping[str, Any]) -> str:
    """`Name, Role, Agency <email>` from a parsed person, leaving out what is not known."""
    text = ", ".join(str(p[k]) for k in ("name", "role", "agency") if p.get(k))
    if p.get("email"):
        text = f"{text} <{p['email']}>" if text else str(p["email"])
    return text


def show(value: Any) -> str:
    """A field value as text: "" when absent."""
    if value is None or value == "" or value == []:
        return ""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return "\n".join(person(v) if isinstance(v, Mapping) else str(v) for v in value)
    if isinstance(value, str) and _is_iso_date(value):
        return long_date(value)
    return str(value)


def canonical_rows(fields: Mapping[str, Any]) -> list[Row]:
    """Every canonical field, given or not, in the business team's order."""
    return [Row(k, label_of(k), show(fields.get(k))) for k in canonical_order()]


def extra_rows(fields: Mapping[str, Any]) -> list[Row]:
    """The fields a form had beyond the canonical ones, as the form gave them (sorted by name),
    and any other top-level key a newer parser stored."""
    extra = fields.get("extra")
    rows = [Row(f"extra.{k}", label_of(f"extra.{k}"), show(v))
            for k, v in sorted(extra.items())] if isinstance(extra, Mapping) else []
    known = {*canonical_order(), "extra"}
    rows += [Row(k, label_of(k), show(v)) for k, v in sorted(fields.items()) if k not in known]
    return rows


def given(fields: Mapping[str, Any], keys: tuple[str, ...] | list[str]) -> list[Row]:
    """The rows among `keys` the form gave, in that order."""
    rows = [Row(k, label_of(k), show(value_of(fields, k))) for k in keys]
    return [r for r in rows if r.value]


def _is_iso_date(text: str) -> bool:
    if len(text) != 10 or text[4] != "-" or text[7] != "-":
        return False
    try:
        long_date(text)
    except ValueError:
        return False
    return True
