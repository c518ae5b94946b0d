"""Form extraction driven by the definitions in parsers/forms/*.toml (labels -> canonical field)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from parsers.labels import LabelIndex, normalise
from parsers.values import (
    EMAIL_RE,
    clean_text,
    is_placeholder,
    parse_bool,
    parse_date,
    parse_int,
    split_people,
    split_person,
)

FORMS_DIR = Path(__file__).with_name("forms")
CANONICAL = (
    "adult_name", "adult_dob", "adult_address", "adult_identifier", "raiser_name", "raiser_role",
    "raiser_agency", "raiser_email", "raiser_phone", "others_involved", "disagreement_summary",
    "category", "stage", "date_raised", "adult_at_risk", "resolved", "agreed_outcome",
    "reason_unresolved", "learning_agency", "learning_partnership", "training_needed",
    "new_protocol", "subgroup_discussion",
)
_OTHER_KEYS = ("name", "role", "agency", "email")


def _shared_target(target: str) -> bool:
    """Targets whose wordings every form shares: the canonical fields and others_involved.*."""
    return target in CANONICAL or target.startswith("others_involved.")


@dataclass
class FieldSpec:
    target: str
    type: str
    labels: list[str]
    into: list[str]


@dataclass
class FormDef:
    name: str
    title: str
    markers: list[str]
    fields: list[FieldSpec]
    implies: dict[str, Any]
    marker_re: re.Pattern[str] | None = field(repr=False, default=None)
    own: dict[str, FieldSpec] = field(repr=False, default_factory=dict)  # key -> its field
    targets: dict[str, FieldSpec] = field(repr=False, default_factory=dict)


@dataclass
class Rules:
    min_fields: int
    min_fields_with_marker: int
    any_of: list[str]
    require: list[tuple[str, list[str]]]
    stop_re: re.Pattern[str] | None = None


@dataclass
class Catalogue:
    """Everything read from one forms directory."""
    forms: tuple[FormDef, ...]
    rules: Rules
    shared: dict[str, FieldSpec]  # wording key -> the canonical field it names
    index: LabelIndex  # every wording of every file

    def spec_for(self, defn: FormDef, key: str) -> FieldSpec | None:
        """The field of `defn` a label names; None when it is another form's label."""
        if key in defn.own:
            return defn.own[key]
        spec = self.shared.get(key)
        return defn.targets.get(spec.target) if spec is not None else None


@dataclass
class Extraction:
    form: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    marker: bool = False

    @property
    def score(self) -> int:
        return len(self.fields)


def _field_specs(data: dict[str, Any], types: dict[str, str]) -> list[FieldSpec]:
    return [FieldSpec(target=f["target"], type=f.get("type", types.get(f["target"], "text")),
                      labels=list(f.get("labels", [])), into=list(f.get("into", [])))
            for f in data.get("field", [])]


def _add_shared(shared: dict[str, FieldSpec], spec: FieldSpec, errors: list[str]) -> None:
    for label in spec.labels:
        key = normalise(label)
        have = shared.setdefault(key, FieldSpec(spec.target, spec.type, [], []))
        if have.target != spec.target or have.type != spec.type:
            errors.append(f"{label!r} names both {have.target} and {spec.target}")
        have.labels.append(label)


@lru_cache(maxsize=8)
def load_catalogue(directory: str | None = None) -> Catalogue:
    """The form definitions, shared wordings and rules of `directory` (default parsers/forms/).

    Raises ValueError when two fields share a wording (in any word order)."""
    forms: list[FormDef] = []
    rules = Rules(3, 2, [], [])
    stops: list[str] = []
    root = Path(directory) if directory else FORMS_DIR
    shared: dict[str, FieldSpec] = {}
    errors: list[str] = []
    wordings = root / "_wordings.toml"
    common = _field_specs(tomllib.loads(wordings.read_text(encoding="utf-8")), {}) \
        if wordings.exists() else []
    types = {s.target: s.type for s in common}
    for spec in common:
        _add_shared(shared, spec, errors)
    for path in sorted(root.glob("*.toml")):
        if path.name == "_wordings.toml":
            continue
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        if path.name == "_rules.toml":
            d = data.get("detect", {})
            rules = Rules(
                min_fields=int(d.get("min_fields", 3)),
                min_fields_with_marker=int(d.get("min_fields_with_marker", 2)),
                any_of=list(d.get("any_of", [])),
                require=[(r["name"], list(r["any_of"])) for r in data.get("require", [])],
            )
            stops = list(data.get("values", {}).get("stop_lines", []))
            continue
        specs = _field_specs(data, types)
        defn = FormDef(name=data["name"], title=data.get("title", data["name"]),
                       markers=list(data.get("markers", [])), fields=specs,
                       implies=dict(data.get("implies", {})))
        for spec in specs:
            defn.targets.setdefault(spec.target, spec)
            for label in spec.labels:
                defn.own.setdefault(normalise(label), spec)
            if _shared_target(spec.target):
                _add_shared(shared, spec, errors)
        if defn.markers:
            defn.marker_re = re.compile("|".join(
                r"[^A-Za-z0-9]*".join(map(re.escape, re.findall(r"[a-z0-9]+", m.lower())))
                for m in defn.markers), re.I)
        forms.append(defn)
    if stops:
        rules.stop_re = re.compile("|".join(re.escape(x) for x in stops), re.I)
    index = LabelIndex([*(lab for s in shared.values() for lab in s.labels),
                        *(lab for d in forms for s in d.fields for lab in s.labels)])
    by_order: dict[str, str] = {}
    for key, spec in shared.items():
        other = by_order.setdefault(" ".join(sorted(key.split())), spec.target)
        if other != spec.target:
            errors.append(f"{key!r} names {spec.target}; in another word order, {other}")
    if errors:
        raise ValueError("form wordings: " + "; ".join(errors))
    return Catalogue(tuple(forms), rules, shared, index)


def load_forms(directory: str | None = None) -> tuple[tuple[FormDef, ...], Rules]:
    """The form definitions and shared rules of `directory` (default: parsers/forms/)."""
    cat = load_catalogue(directory)
    return cat.forms, cat.rules


# --- extraction ------------------------------------------------------------------------------

def _unwrap(lines: list[str]) -> str:
    """Free text over several lines: soft wraps (PDF, 76-column mail) joined with a space; a line
    ending a sentence, or a list item, keeps its line break."""
    out = ""
    for ln in lines:
        if not out:
            out = ln
        elif re.search(r"[.!?:;]$", out) or re.match(r"^[-*•\d]+[.)]?\s", ln):
            out += "\n" + ln
        else:
            out += " " + ln
    return out.strip()


@dataclass(frozen=True)
class _Label:
    key: str
    value: str  # the rest of the line after the label and its separator
    wrapped: bool  # the label continued on the next line (which is consumed)


_CONSUMED = _Label("", "", False)  # the second line of a wrapped label


def _scan(index: LabelIndex, text: str) -> tuple[list[str], list[_Label | None]]:
    """The lines of `text` and the label starting each (once, for every form definition)."""
    lines = text.replace("\r", "").split("\n")
    labels: list[_Label | None] = [None] * len(lines)
    for i, line in enumerate(lines):
        if labels[i] is _CONSUMED:
            continue
        hit, open_ended = index.read_line(line)
        label = _Label(hit.key, line[hit.value_start:], False) if hit else None
        if open_ended and i + 1 < len(lines) and lines[i + 1].strip() and (
                label is None or label.value.strip()):
            # A long label wrapped over two lines (PDF text, narrow table cells).
            first = line.rstrip()
            joined = first + " " + lines[i + 1].strip()
            wrapped = index.match(joined, min_end=len(first) + 1, fuzzy=False)
            if wrapped is not None:
                label = _Label(wrapped.key, joined[wrapped.value_start:], True)
                labels[i + 1] = _CONSUMED
        labels[i] = label
    return lines, labels


def extract(defn: FormDef, text: str, directory: str | None = None) -> Extraction:
    """Label/value pairs of one form definition from text lines (table rows are lines too)."""
    cat = load_catalogue(directory)
    lines, labels = _scan(cat.index, text)
    return _read(cat, defn, text, lines, labels)


def _read(cat: Catalogue, defn: FormDef, text: str, lines: list[str],
          labels: list[_Label | None]) -> Extraction:
    rules = cat.rules
    ex = Extraction(form=defn.name)
    if defn.marker_re is not None and defn.marker_re.search(text):
        ex.marker = True
    raw: list[tuple[FieldSpec, list[str]]] = []
    current: tuple[FieldSpec, list[str]] | None = None
    for line, label in zip(lines, labels, strict=True):
        if label is _CONSUMED:
            continue
        if label is not None:
            # Any known label ends the value before it; another form's label reads nothing here.
            spec = cat.spec_for(defn, label.key)
            rest = label.value.strip()
            current = (spec, [rest] if rest else []) if spec is not None else None
            if current is not None:
                raw.append(current)
            continue
        if current is None:
            continue
        stripped = line.strip().lstrip(">").strip()
        if not stripped:
            if current[1]:
                current = None
            continue
        if rules.stop_re is not None and rules.stop_re.match(stripped):
            current = None
            continue
        if not current[1] and (cat.index.looks_like_label(stripped)
                               or not _fits(current[0].type, stripped)):
            # A bare label followed by an unknown label, or by something that is not a value of
            # its type ("DOB" then "Date of referral"): the field is empty.
            current = None
            continue
        # Values continue on the following lines for free text, or start there after a bare label.
        if current[1] and current[0].type not in ("text", "people"):
            current = None
            continue
        current[1].append(stripped)
    for spec, values in raw:
        _store(ex, spec, _unwrap(values) if spec.type == "text" else "\n".join(values).strip())
    return ex


def _fits(kind: str, value: str) -> bool:
    """Whether a line under a bare label can be its value (typed fields must parse)."""
    if kind == "date":
        return parse_date(value) is not None
    if kind == "bool":
        return parse_bool(value) is not None
    if kind == "int":
        return parse_int(value) is not None
    if kind == "email":
        return EMAIL_RE.search(value) is not None
    return True


def _store(ex: Extraction, spec: FieldSpec, value: str) -> None:
    if is_placeholder(value):
        return
    target, kind = spec.target, spec.type
    if target.startswith("extra."):
        ex.extra.setdefault(target[6:], clean_text(value))
        return
    if kind == "person":
        for k, v in split_person(value, spec.into).items():
            ex.fields.setdefault(k, v)
        return
    if kind == "people":
        people = split_people(value)
        if people:
            _merge_people(ex.fields, people)
        return
    if target.startswith("others_involved."):
        key = target.split(".", 1)[1]
        v = clean_text(value)
        if kind == "email":
            found = EMAIL_RE.search(value)
            v = found.group(0).lower() if found else v
        _merge_people(ex.fields, [{key: v}])
        return
    if target in ex.fields:
        return
    if kind == "date":
        iso = parse_date(value)
        if iso is None:
            ex.warnings.append(f"{target}: not a date I can read; kept as written")
            ex.fields[target] = clean_text(value)
        else:
            ex.fields[target] = iso
    elif kind == "bool":
        b = parse_bool(value)
        if b is None:
            ex.warnings.append(f"{target}: no clear Yes/No")
        else:
            ex.fields[target] = b
    elif kind == "int":
        n = parse_int(value)
        if n is None:
            ex.warnings.append(f"{target}: not a number")
        else:
            ex.fields[target] = n
    elif kind == "email":
        found = EMAIL_RE.search(value)
        if found:
            ex.fields[target] = found.group(0).lower()
    else:
        ex.fields[target] = clean_text(value)


def _merge_people(fields: dict[str, Any], people: list[dict[str, Any]]) -> None:
    have: list[dict[str, Any]] = fields.setdefault("others_involved", [])
    for p in people:
        full = {k: p.get(k) for k in _OTHER_KEYS}
        # Separate "Other agency:" / "Other professional:" lines describe the first person.
        if len(p) == 1 and have and not have[0].get(next(iter(p))):
            have[0].update({k: v for k, v in full.items() if v})
            continue
        have.append(full)


def merge(into: Extraction, other: Extraction, source: str, warn: bool = True) -> None:
    """Fill fields missing from `into` with those of `other`; note conflicts."""
    for k, v in other.fields.items():
        if k not in into.fields:
            into.fields[k] = v
        elif k == "others_involved":
            for p in v:
                if p not in into.fields[k]:
                    into.fields[k].append(p)
        elif warn and into.fields[k] != v:
            into.warnings.append(f"{k}: {source} gives a different value; kept the first")
    for k, v in other.extra.items():
        into.extra.setdefault(k, v)
    into.marker = into.marker or other.marker
    for w in other.warnings:
        if w not in into.warnings:
            into.warnings.append(w)


def extract_best(text: str, directory: str | None = None) -> Extraction:
    """Every form definition on the text; the best one's fields, gaps filled from the others."""
    cat = load_catalogue(directory)
    forms = cat.forms
    lines, labels = _scan(cat.index, text)
    results = [_read(cat, d, text, lines, labels) for d in forms]
    results.sort(key=lambda e: (e.score + (2 if e.marker else 0)), reverse=True)
    best = results[0] if results else Extraction()
    out = Extraction(form=best.form, fields=dict(best.fields), extra=dict(best.extra),
                     warnings=list(best.warnings), marker=best.marker)
    if "others_involved" in out.fields:
        out.fields["others_involved"] = [dict(p) for p in out.fields["others_involved"]]
    for other in results[1:]:
        for k, v in other.fields.items():
            if k not in out.fields:
                out.fields[k] = v
        for k, v in other.extra.items():
            out.extra.setdefault(k, v)
        out.marker = out.marker or other.marker
    if not out.fields and not out.extra:
        out.form = None
    else:
        # Values the matched form implies by itself (e.g. a Stage 2 template).
        defn = next((d for d in forms if d.name == best.form), None)
        if defn is not None and (best.marker or best.score >= 3):
            for k, v in defn.implies.items():
                out.fields.setdefault(k, v)
    return out


def looks_like_form(ex: Extraction) -> bool:
    _, rules = load_forms()
    n = len([k for k in ex.fields if k in CANONICAL])
    if ex.marker and n >= rules.min_fields_with_marker:
        return True
    return n >= rules.min_fields and any(k in ex.fields for k in rules.any_of)


def missing_fields(fields: dict[str, Any]) -> list[str]:
    _, rules = load_forms()
    out = []
    for name, any_of in rules.require:
        if not any(_present(fields, key) for key in any_of):
            out.append(name)
    return out


def _present(fields: dict[str, Any], key: str) -> bool:
    if "." in key:
        top, sub = key.split(".", 1)
        return any(isinstance(p, dict) and p.get(sub) for p in fields.get(top) or [])
    v = fields.get(key)
    return v is not None and v != "" and v != []
