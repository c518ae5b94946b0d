"""Form extraction driven by the definitions in parsers/forms/*.toml (labels -> canonical field)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

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
_LINE_LEAD = r"^[ \t>*•·\-–]*"
_SEP = r"[ \t.?!)\]]*(?:[:?=|\t]|\s[-–—]\s)[ \t:?*|]*"


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
    pattern: re.Pattern[str] = field(repr=False, default=None)  # type: ignore[arg-type]
    specs: dict[str, FieldSpec] = field(repr=False, default_factory=dict)
    marker_re: re.Pattern[str] | None = field(repr=False, default=None)


@dataclass
class Rules:
    min_fields: int
    min_fields_with_marker: int
    any_of: list[str]
    require: list[tuple[str, list[str]]]
    stop_re: re.Pattern[str] | None = None


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


def _words(label: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", label.lower())


def _label_regex(label: str) -> str:
    words = _words(label)
    body = r"[^A-Za-z0-9\n]*".join(re.escape(w) for w in words)
    # Short labels need a separator (colon, tab, cell break) or the end of the line, so prose
    # such as "Address the issue" is not read as a label; long ones may be followed by a space.
    end = r"[ \t.?!)\]]*$"
    tail = rf"(?:{_SEP}|{end})" if len(words) < 4 else rf"(?:{_SEP}|{end}|[ \t]+)"
    return body + r"(?![A-Za-z0-9])" + tail


def _compile(defn: FormDef) -> None:
    alts: list[tuple[int, str, str]] = []
    for i, spec in enumerate(defn.fields):
        for j, label in enumerate(spec.labels):
            alts.append((len(_words(label)), f"f{i}_{j}", _label_regex(label)))
            defn.specs[f"f{i}_{j}"] = spec
    alts.sort(key=lambda a: -a[0])
    joined = "|".join(f"(?P<{g}>{rx})" for _, g, rx in alts)
    defn.pattern = re.compile(_LINE_LEAD + f"(?:{joined})", re.I)
    if defn.markers:
        defn.marker_re = re.compile(
            "|".join(r"[^A-Za-z0-9]*".join(map(re.escape, _words(m))) for m in defn.markers), re.I)


@lru_cache(maxsize=8)
def load_forms(directory: str | None = None) -> tuple[tuple[FormDef, ...], Rules]:
    """The form definitions and shared rules of `directory` (default: parsers/forms/)."""
    forms: list[FormDef] = []
    rules = Rules(3, 2, [], [])
    stops: list[str] = []
    for path in sorted((Path(directory) if directory else FORMS_DIR).glob("*.toml")):
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
        specs = [FieldSpec(target=f["target"], type=f.get("type", "text"),
                           labels=list(f["labels"]), into=list(f.get("into", [])))
                 for f in data.get("field", [])]
        defn = FormDef(name=data["name"], title=data.get("title", data["name"]),
                       markers=list(data.get("markers", [])), fields=specs,
                       implies=dict(data.get("implies", {})))
        _compile(defn)
        forms.append(defn)
    if stops:
        rules.stop_re = re.compile("|".join(re.escape(x) for x in stops), re.I)
    return tuple(forms), rules


# --- extraction ------------------------------------------------------------------------------

def _match_label(defn: FormDef, line: str) -> tuple[FieldSpec, str] | None:
    m = defn.pattern.match(line)
    if not m or m.lastgroup is None:
        return None
    return defn.specs[m.lastgroup], line[m.end():]


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


def extract(defn: FormDef, text: str) -> Extraction:
    """Label/value pairs of one form definition from text lines (table rows are lines too)."""
    _, rules = load_forms()
    ex = Extraction(form=defn.name)
    if defn.marker_re is not None and defn.marker_re.search(text):
        ex.marker = True
    raw: list[tuple[FieldSpec, list[str]]] = []
    current: tuple[FieldSpec, list[str]] | None = None
    lines = text.replace("\r", "").split("\n")
    skip = False
    for i, line in enumerate(lines):
        if skip:
            skip = False
            continue
        hit = _match_label(defn, line)
        if line.strip() and i + 1 < len(lines) and lines[i + 1].strip() and (
                not hit or hit[1].strip()):
            # A long label wrapped over two lines (PDF text, narrow table cells).
            joined = line.rstrip() + " " + lines[i + 1].strip()
            wrapped = _match_label(defn, joined)
            if wrapped and len(joined) - len(wrapped[1]) > len(line.rstrip()) + 1:
                hit, skip = wrapped, True
        if hit:
            spec, rest = hit
            current = (spec, [rest.strip()] if rest.strip() else [])
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
        # Values continue on the following lines for free text, or start there after a bare label.
        if current[1] and current[0].type not in ("text", "people"):
            current = None
            continue
        current[1].append(stripped)
    for spec, lines in raw:
        _store(ex, spec, _unwrap(lines) if spec.type == "text" else "\n".join(lines).strip())
    return ex


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
    forms, _ = load_forms(directory)
    results = [extract(d, text) for d in forms]
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
