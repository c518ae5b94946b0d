"""A form label at the start of a line, whatever its wording.

Every known wording is normalised once (case, punctuation, apostrophes, plurals and a few filler
words ignored). A line is read by walking its first words against those keys, the longest that is
followed by a separator winning; when none is, the text before the line's first separator (or a
short line on its own) is compared with every key by rapidfuzz, word order ignored, and taken when
it scores at least `FUZZY_CUTOFF`. The work per line is bounded: only its first `MAX_LABEL_CHARS`
characters are looked at, the word walk stops as soon as no key starts that way, and there is at
most one fuzzy lookup a line, against the keys of a compatible length only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz, process

MAX_LABEL_CHARS = 240  # the longest printed label (Swindon's Appendix 2) has about 200
# Tested in tests/parsers/test_labels.py: a wrong letter in "Name of adult" (90) or a missing one in
# "Adress" (92) is accepted; "Other professional's role" against "... email" (77) and "Agency raising
# concerns" against "Agency receiving the concerns" (87) are not.
FUZZY_CUTOFF = 88.0
FUZZY_MIN_CHARS = 6  # shorter keys ("DOB", "Tel", "Email") must be written exactly
WEAK_MIN_WORDS = 4  # labels this long may be followed by a space instead of a separator

_FILLER = frozenset({"the", "a", "an", "of", "and", "or", "full", "please", "s"})
# A word, keeping "adult's" and "e-mail" whole (the apostrophe and hyphen are dropped later).
_WORD = re.compile(r"(?i:e-mail)|[^\W_]+(?:['’][^\W_]+)*")
_LEAD = re.compile(r"[ \t>*•·\-–]*")
# What may follow a label: a separator (colon, question mark, tab, cell break, " - ") ...
_SEP = re.compile(r"[ \t.?!;)\]]*(?:[:?=|\t]|\s[-–—]\s)[ \t:?*|]*")
# ... or the end of the line, or (long labels only) a space before the value.
_END = re.compile(r"[ \t.?!;)\]:]*$")
_WEAK = re.compile(r"[.?!)\]]*[ \t]+(?=\S)")
# A line that can only be a label: "Date of referral:" (a short phrase ending in a colon).
_COLON_LABEL = re.compile(r"[A-Z][^:\n]{0,80}:[ \t]*$")
_CONNECTIVES = frozenset({"of", "for", "by"})


@lru_cache(maxsize=4096)
def _norm_word(word: str) -> str:
    w = word.lower().replace("'", "").replace("’", "").replace("-", "")
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def _parts(text: str) -> Iterator[tuple[str, int, bool]]:
    """(normalised word, end offset in `text`, is filler), lazily; "D.O.B" is one word "dob"."""
    pending: tuple[str, int] | None = None  # a run of single letters: "D.O.B", "N.H.S"
    for m in _WORD.finditer(text):
        w = _norm_word(m.group(0))
        if len(w) == 1 and w.isalpha():
            pending = (pending[0] + w, m.end()) if pending else (w, m.end())
            continue
        if pending:
            yield pending[0], pending[1], pending[0] in _FILLER
            pending = None
        yield w, m.end(), w in _FILLER
    if pending:
        yield pending[0], pending[1], pending[0] in _FILLER


def normalise(label: str) -> str:
    """The key of a wording: "Adult's full name:" and "adult name" give "adult name"."""
    return " ".join(w for w, _, filler in _parts(label) if not filler)


def _sorted_key(key: str) -> str:
    return " ".join(sorted(key.split()))


@dataclass(frozen=True)
class LabelMatch:
    key: str  # the normalised wording matched
    end: int  # where the label ends in the line
    value_start: int  # where its value starts (after the separator)
    score: float  # 100 for an exact match


class LabelIndex:
    """Known wordings, normalised once, and the matching of a line's start against them."""

    def __init__(self, wordings: Iterable[str]) -> None:
        self._words: dict[str, int] = {}  # key -> most words of a wording with that key
        self._prefixes: set[str] = set()
        self._first_words: set[str] = set()
        for wording in wordings:
            key = normalise(wording)
            if not key:
                raise ValueError(f"label {wording!r} has no words once normalised")
            if len(wording) > MAX_LABEL_CHARS:
                raise ValueError(f"label {wording[:40]!r}... is longer than {MAX_LABEL_CHARS}")
            n = len(_WORD.findall(wording))
            self._words[key] = max(n, self._words.get(key, 0))
            words = key.split()
            self._first_words.add(words[0])
            for i in range(1, len(words) + 1):
                self._prefixes.add(" ".join(words[:i]))
        # For the fuzzy lookup: each key with its words sorted, bucketed by length so a query is
        # compared only with keys long enough to reach the cutoff (ratio <= 2*min/(a+b)).
        self._sorted: dict[str, str] = {}
        for key in self._words:
            self._sorted.setdefault(_sorted_key(key), key)
        self._by_length: dict[int, list[str]] = {}
        c = FUZZY_CUTOFF / 100
        for n in range(FUZZY_MIN_CHARS, MAX_LABEL_CHARS + 1):
            lo, hi = n * c / (2 - c), n * (2 - c) / c
            self._by_length[n] = [s for s in self._sorted if lo <= len(s) <= hi]

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(self._words)

    def sorted_keys(self) -> dict[str, str]:
        """Word-order-insensitive form -> key (keys differing only in word order share one)."""
        return dict(self._sorted)

    def looks_like_label(self, line: str) -> bool:
        """Whether a line no wording matched is still shaped like a label: a short phrase ending in
        a colon, or one such as "Date of referral" (a few words without figures, whose first word
        starts known labels and whose second is "of", "for" or "by"). After a bare label, such a
        line is another label, not that label's value."""
        text = line.strip()
        if _COLON_LABEL.match(text):
            return True
        words = text.split()
        if not 2 <= len(words) <= 6 or re.search(r"[\d@.,;!]", text) or not text[0].isupper():
            return False
        return _norm_word(words[0]) in self._first_words and words[1].lower() in _CONNECTIVES

    def match(self, line: str, min_end: int = 0, fuzzy: bool = True) -> LabelMatch | None:
        """The label starting `line`, if any, ending after `min_end`; longest exact match first."""
        return self.read_line(line, min_end, fuzzy)[0]

    def read_line(self, line: str, min_end: int = 0, fuzzy: bool = True
                  ) -> tuple[LabelMatch | None, bool]:
        """`match`, and whether every word of the line starts a known wording (so a label wrapped
        onto the next line may continue there)."""
        lead = _LEAD.match(line)
        start = lead.end() if lead else 0
        head = line[start:start + MAX_LABEL_CHARS]
        best: LabelMatch | None = None
        key = ""
        open_ended = len(line) - start <= MAX_LABEL_CHARS
        for word, end, filler in _parts(head):
            if not filler:
                key = f"{key} {word}" if key else word
                if key not in self._prefixes:
                    open_ended = False
                    break
            elif best is not None and best.key == key:
                continue  # "Nature of the dispute: The ...": "The" is the value's
            if not key or key not in self._words or start + end <= min_end:
                continue
            value_start = _value_start(line, start + end, self._words[key] >= WEAK_MIN_WORDS)
            if value_start is not None:
                best = LabelMatch(key, start + end, value_start, 100.0)
        open_ended = open_ended and bool(key)
        if best is not None or not fuzzy:
            return best, open_ended
        return self._fuzzy(line, start, head, min_end), open_ended

    def _fuzzy(self, line: str, start: int, head: str, min_end: int) -> LabelMatch | None:
        sep = _SEP.search(head)
        if sep is not None:
            candidate, end, value_start = head[:sep.start()], start + sep.start(), start + sep.end()
        elif len(line) - start <= MAX_LABEL_CHARS:
            stripped = head.rstrip(" \t.?!)]")
            candidate, end, value_start = stripped, start + len(stripped), len(line)
        else:
            return None
        if end <= min_end:
            return None
        query = _sorted_key(normalise(candidate))
        choices = self._by_length.get(len(query)) if len(query) >= FUZZY_MIN_CHARS else None
        if not choices:
            return None
        found = process.extractOne(query, choices, scorer=fuzz.ratio, processor=None,
                                   score_cutoff=FUZZY_CUTOFF)
        if found is None:
            return None
        return LabelMatch(self._sorted[found[0]], end, value_start, float(found[1]))


def _value_start(line: str, pos: int, weak_ok: bool) -> int | None:
    if m := _SEP.match(line, pos):
        return m.end()
    if _END.match(line, pos):
        return len(line)
    if weak_ok and (m := _WEAK.match(line, pos)):
        return m.end()
    return None
