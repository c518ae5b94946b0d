"""Reading typed values out of form cells: British dates, tick boxes, numbers, people."""

from __future__ import annotations

import re
from datetime import date

# The look-behind starts a match only where a local part starts: a search over a long run of
# local-part characters with no usable '@' stays linear instead of retrying from every position.
EMAIL_RE = re.compile(r"(?<![A-Za-z0-9._%+'\-])[A-Za-z0-9._%+'\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
PHONE_RE = re.compile(r"(?:(?:\+44\s?|0)(?:\d[\s\-]?){9,10})")
_MONTHS = {m: i for i, names in enumerate([
    (), ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",),
    ("jun", "june"), ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"),
    ("oct", "october"), ("nov", "november"), ("dec", "december")]) for m in names}
_MONTH_RX = "|".join(sorted(_MONTHS, key=len, reverse=True))
_D_M_Y = re.compile(r"\b(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})\b")
_ISO = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_D_MON_Y = re.compile(
    rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MONTH_RX})\.?,?\s+(\d{{4}})\b", re.I)
_MON_D_Y = re.compile(rf"\b({_MONTH_RX})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", re.I)
_PLACEHOLDERS = {"", "-", "–", "—", "n/a", "na", "(insert)", "[insert]", "insert", "tbc", "?",
                 "click or tap here to enter text.", "click here to enter text."}
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}


def clean_text(value: str) -> str:
    lines = [" ".join(ln.split()) for ln in value.replace("\r", "").split("\n")]
    return "\n".join(ln for ln in lines if ln).strip()


def is_placeholder(value: str) -> bool:
    return clean_text(value).lower() in _PLACEHOLDERS


def _iso(y: int, m: int, d: int) -> str | None:
    try:
        return date(y, m, d).isoformat()
    except ValueError:
        return None


def parse_date(value: str) -> str | None:
    """A British (day-first) date as ISO 8601: 03/04/1951, 3 April 1951, 3rd Apr 1951."""
    v = value.strip()
    if m := _ISO.search(v):
        return _iso(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    if m := _D_M_Y.search(v):
        return _iso(int(m.group(3)), int(m.group(2)), int(m.group(1)))
    if m := _D_MON_Y.search(v):
        return _iso(int(m.group(3)), _MONTHS[m.group(2).lower()], int(m.group(1)))
    if m := _MON_D_Y.search(v):
        return _iso(int(m.group(3)), _MONTHS[m.group(1).lower()], int(m.group(2)))
    return None


_CHECKED = r"(?:☒|☑|✓|✔|✅|■|\[\s*[xX✓]\s*\]|\(\s*[xX]\s*\)|\b[xX]\b)"
_UNCHECKED = r"(?:☐|□|\[\s*\]|\(\s*\))"
_OPT = r"(yes|no|y|n)"
_AFTER = re.compile(rf"\b{_OPT}\b[ \t:]*{_CHECKED}", re.I)
_BEFORE = re.compile(rf"{_CHECKED}[ \t:]*\b{_OPT}\b", re.I)
_STRUCK = re.compile(r"~~\s*(yes|no)\s*~~", re.I)


def _yes(word: str) -> bool:
    return word.lower() in ("yes", "y")


def parse_bool(value: str) -> bool | None:
    """Yes/No cells: `Yes ☒ No ☐`, `X` beside one, `Yes/No` with one struck, or a plain answer."""
    v = value.strip()
    if not v:
        return None
    struck = {w.lower() for w in _STRUCK.findall(v)}
    if struck == {"no"}:
        return True
    if struck == {"yes"}:
        return False
    # "☐ Yes ☒ No" puts the box before its option; "Yes ☐ No ☒" after.
    box_first = re.match(rf"\s*(?:{_CHECKED}|{_UNCHECKED})", v) is not None
    for rx in ((_BEFORE, _AFTER) if box_first else (_AFTER, _BEFORE)):
        chosen = {_yes(m.group(1)) for m in rx.finditer(v)}
        if len(chosen) == 1:
            return chosen.pop()
        if len(chosen) == 2:
            return None
    words = re.findall(r"[A-Za-z]+", v.lower())
    if not words:
        return True if re.search(_CHECKED, v) else None
    has_yes = "yes" in words or words[0] == "y"
    has_no = "no" in words or words[0] == "n"
    if has_yes and has_no:
        # "Yes - no further action" answers yes; a bare "Yes No" template is unanswered.
        first = "yes" if words[0] in ("yes", "y") else "no" if words[0] in ("no", "n") else None
        if first and not (len(words) == 2 and set(words) == {"yes", "no"}):
            return first == "yes"
        return None
    if words[0] in ("yes", "y", "true", "ticked", "agreed", "required", "needed"):
        return True
    if words[0] in ("no", "n", "false", "none", "not"):
        return False
    return None


def parse_int(value: str) -> int | None:
    m = re.search(r"\d+", value)
    if m:
        return int(m.group(0))
    for word, n in _NUMBER_WORDS.items():
        if re.search(rf"\b{word}\b", value, re.I):
            return n
    return None


_INNER_LABEL = re.compile(
    r"^(name|role|job title|title|agency|organisation|organization|email|e-mail|tel|phone"
    r"|telephone|mobile)\s*[:\-]\s*", re.I)
_INNER_MAP = {"name": "name", "role": "role", "job title": "role", "title": "role",
              "agency": "agency", "organisation": "agency", "organization": "agency",
              "email": "email", "e-mail": "email", "tel": "phone", "phone": "phone",
              "telephone": "phone", "mobile": "phone"}


def _pieces(value: str) -> tuple[list[tuple[str | None, str]], str | None, str | None]:
    """Comma/line separated pieces with any inner `Role:` labels, plus email and phone."""
    email = None
    phone = None
    if m := EMAIL_RE.search(value):
        email = m.group(0).lower()
        value = value.replace(m.group(0), " ")
    if m := PHONE_RE.search(value):
        phone = " ".join(m.group(0).split())
        value = value.replace(m.group(0), " ")
    value = re.sub(r"[<>()\[\]]", " ", value)
    value = re.sub(r"\b(?:email|e-mail|tel|phone|telephone|mobile)\s*[:\-]?\s*(?=,|$|\n)", " ",
                   value, flags=re.I)
    out: list[tuple[str | None, str]] = []
    for raw in re.split(r"\s*[,;\n|]\s*|\s+[-–—]\s+", value):
        piece = raw.strip(" .:-–")
        if not piece:
            continue
        label = None
        if m := _INNER_LABEL.match(piece):
            label = _INNER_MAP[m.group(1).lower()]
            piece = piece[m.end():].strip()
            if not piece:
                continue
        out.append((label, piece))
    return out, email, phone


def _person(value: str) -> dict[str, str | None]:
    pieces, email, phone = _pieces(value)
    person: dict[str, str | None] = {"name": None, "role": None, "agency": None,
                                     "email": email, "phone": phone}
    positional = [p for lab, p in pieces if lab is None]
    for lab, p in pieces:
        if lab and not person.get(lab):
            person[lab] = p
    order = [k for k in ("name", "role", "agency") if not person[k]]
    for i, p in enumerate(positional):
        if i < len(order):
            person[order[i]] = p
        elif order:
            # Further pieces belong to the agency ("Swindon Borough Council, Adult Services").
            person[order[-1]] = f"{person[order[-1]]}, {p}"
    return person


def split_person(value: str, into: list[str]) -> dict[str, str]:
    """`Name, Role, Agency (email)` into the canonical names listed in `into`, in that order.

    `into` names ending in _name/_role/_agency/_email/_phone take those parts; with only role and
    agency (e.g. ["raiser_role", "raiser_agency"]) the pieces fill those two.
    """
    wanted = {t.rsplit("_", 1)[1]: t for t in into}
    pieces, email, phone = _pieces(value)
    if "name" not in wanted:
        # "Social Worker, Swindon Borough Council" -> role, agency
        person: dict[str, str | None] = {"role": None, "agency": None}
        positional = [p for lab, p in pieces if lab is None]
        for lab, p in pieces:
            if lab in person and not person[lab]:
                person[lab] = p
        order = [k for k in ("role", "agency") if not person[k]]
        for i, p in enumerate(positional):
            if i < len(order):
                person[order[i]] = p
            elif order:
                person[order[-1]] = f"{person[order[-1]]}, {p}"
        person["email"], person["phone"] = email, phone
    else:
        person = _person(value)
    return {wanted[k]: v for k, v in person.items() if k in wanted and v}


def split_people(value: str) -> list[dict[str, str | None]]:
    """One person a line (or `;`-separated): {name, role, agency, email}."""
    out = []
    value = re.sub(r",[ \t]*\n\s*", ", ", value)  # a line ending in a comma goes on
    for chunk in re.split(r"\s*(?:\n|;)\s*", value):
        if not chunk.strip() or is_placeholder(chunk):
            continue
        p = _person(chunk)
        entry = {k: p[k] for k in ("name", "role", "agency", "email")}
        if any(entry.values()):
            out.append(entry)
    return out
