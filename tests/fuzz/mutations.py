"""Seeded mutations of the parser corpus (tests/fixtures/mail/*.eml): each turns one real message
into a hostile one. `mutant(i, seed)` is reproducible: the same (i, seed) gives the same bytes."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from pathlib import Path

CORPUS_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "mail"
_END = re.compile(rb"\r?\n\r?\n")


def corpus() -> list[tuple[str, bytes]]:
    return [(p.name, p.read_bytes()) for p in sorted(CORPUS_DIR.glob("*.eml"))]


def _split(raw: bytes) -> tuple[list[bytes], bytes]:
    end = _END.search(raw)
    if end is None:
        return raw.split(b"\n"), b""
    return raw[: end.start()].split(b"\n"), raw[end.end():]


def _join(headers: list[bytes], body: bytes) -> bytes:
    return b"\n".join(headers) + b"\r\n\r\n" + body


def byte_flips(r: random.Random, raw: bytes) -> bytes:
    b = bytearray(raw)
    for _ in range(r.randint(1, 64)):
        if b:
            b[r.randrange(len(b))] = r.randrange(256)
    return bytes(b)


def header_duplication(r: random.Random, raw: bytes) -> bytes:
    headers, body = _split(raw)
    if not headers:
        return raw
    extra = [r.choice(headers) for _ in range(r.randint(2, 2_000))]
    return _join(headers + extra, body)


def giant_header(r: random.Random, raw: bytes) -> bytes:
    headers, body = _split(raw)
    name = r.choice([b"Subject", b"X-Junk", b"References", b"From", b"Content-Type", b"Received"])
    size = r.choice([1_000, 50_000, 99_000, 150_000, 600_000])
    unit = r.choice([b"a", b"a ", b"<x@y> ", b"=?utf-8?b?!!?= ", b"\r\n ", b"(((", b'"\\'])
    return _join([name + b": " + unit * (size // len(unit))] + headers, body)


def many_recipients(r: random.Random, raw: bytes) -> bytes:
    headers, body = _split(raw)
    n = r.choice([900, 5_000, 100_000])
    sep = r.choice([b", ", b",\r\n ", b"; "])
    field = r.choice([b"To", b"Cc", b"Bcc", b"Reply-To"])
    value = sep.join(b"r%d@example.org" % i for i in range(n))
    return _join(headers + [field + b": " + value], body)


def deep_nesting(r: random.Random, raw: bytes) -> bytes:
    inner = raw
    for depth in range(r.randint(2, 80)):
        if r.random() < 0.5:
            inner = (b"From: nest%d@example.org\r\nSubject: fwd\r\nContent-Type: message/rfc822\r\n\r\n" % depth
                     + inner)
        else:
            bnd = b"b%d" % depth
            inner = (b"From: nest%d@example.org\r\nContent-Type: multipart/mixed; boundary=" % depth + bnd
                     + b"\r\n\r\n--" + bnd + b"\r\nContent-Type: message/rfc822\r\n\r\n" + inner
                     + b"\r\n--" + bnd + b"--\r\n")
    return inner


def truncation(r: random.Random, raw: bytes) -> bytes:
    return raw[: r.randrange(max(len(raw), 1))]


def huge_quoted_reply(r: random.Random, raw: bytes) -> bytes:
    headers, body = _split(raw)
    size = r.choice([50_000, 200_000, 420_000])
    unit = r.choice([
        b"\n", b" \n", b"> quoted line of earlier history\n", b">" * 80 + b"\n", b"-" * 200 + b"\n",
        b"On Mon, 21 Dec 2026 somebody wrote:\n", b"From: x\n", b"_" * 300, b"a" * 1000 + b"@",
        b"#resolved\n", b"\t\t  \t\n\n\n", b"Sent from my phone\n",
    ])
    filler = unit * (size // len(unit))
    where = r.choice(["start", "end", "middle"])
    if where == "start":
        body = b"#resolved agreed\r\n" + filler + body
    elif where == "end":
        body = body + filler
    else:
        cut = r.randrange(len(body) + 1)
        body = body[:cut] + filler + body[cut:]
    return _join(headers, body)


def many_parts(r: random.Random, raw: bytes) -> bytes:
    n = r.choice([100, 1_000, 5_000])
    parts = b"".join(b"--p\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(n))
    return (b"From: parts@example.org\r\nSubject: parts\r\nContent-Type: multipart/mixed; boundary=p\r\n\r\n"
            + parts + b"--p--\r\n" + raw[:2_000])


def boundary_damage(r: random.Random, raw: bytes) -> bytes:
    found = re.findall(rb'boundary="?([^";\r\n]+)"?', raw)
    if not found:
        return byte_flips(r, raw)
    bnd = r.choice(found)
    choice = r.random()
    if choice < 0.33:
        return raw.replace(b"--" + bnd, b"--" + bnd[:-1])
    if choice < 0.66:
        return raw.replace(b"--" + bnd + b"--", b"")
    return raw.replace(b"--" + bnd, (b"--" + bnd + b"\r\n") * r.randint(2, 50))


def splice(r: random.Random, raw: bytes, other: bytes) -> bytes:
    return raw[: r.randrange(len(raw) + 1)] + other[r.randrange(len(other) + 1):]


def line_endings(r: random.Random, raw: bytes) -> bytes:
    return r.choice([raw.replace(b"\r\n", b"\n"), raw.replace(b"\r\n", b"\r"), raw.replace(b"\n", b"\r\r\n"),
                     raw.replace(b"\r\n", b"\x00\r\n")])


MUTATIONS: list[tuple[str, Callable[[random.Random, bytes], bytes]]] = [
    ("byte_flips", byte_flips), ("header_duplication", header_duplication), ("giant_header", giant_header),
    ("many_recipients", many_recipients), ("deep_nesting", deep_nesting), ("truncation", truncation),
    ("huge_quoted_reply", huge_quoted_reply), ("many_parts", many_parts),
    ("boundary_damage", boundary_damage), ("line_endings", line_endings),
]


def mutant(i: int, seed: int, messages: list[tuple[str, bytes]]) -> tuple[str, bytes]:
    """The i-th fuzzed message: (description, bytes); one to three mutations of one corpus message."""
    r = random.Random(seed * 1_000_003 + i)
    name, raw = messages[r.randrange(len(messages))]
    applied = []
    for _ in range(r.choice([1, 1, 1, 2, 3])):
        if r.random() < 0.08:
            raw = splice(r, raw, messages[r.randrange(len(messages))][1])
            applied.append("splice")
            continue
        label, mutate = MUTATIONS[r.randrange(len(MUTATIONS))]
        raw = mutate(r, raw)
        applied.append(label)
    return f"#{i} {name} {'+'.join(applied)}", raw
