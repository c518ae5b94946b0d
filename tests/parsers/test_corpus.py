"""Every message of tests/fixtures/mail parses to its expected result (the checked subset)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parsers import parse_message

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "mail"
NAMES = sorted(p.name[: -len(".eml")] for p in CORPUS.glob("*.eml"))
EXACT = ("kind", "case_ref", "case_ref_source", "reply_token", "commands", "missing",
         "automated", "bounced_message_id", "bounced_recipients", "auth", "form")


def test_corpus_is_large_enough() -> None:
    assert len(NAMES) >= 40
    kinds = {json.loads((CORPUS / f"{n}.expected.json").read_text())["kind"] for n in NAMES}
    assert kinds == {"form", "reply", "auto_reply", "bounce", "unrelated"}


@pytest.mark.parametrize("name", NAMES)
def test_message(name: str) -> None:
    raw = (CORPUS / f"{name}.eml").read_bytes()
    expected = json.loads((CORPUS / f"{name}.expected.json").read_text(encoding="utf-8"))
    got = parse_message(raw).to_json()
    assert got["rejected"] is None, got["warnings"]
    for key in EXACT:
        if key in expected:
            assert got[key] == expected[key], f"{key}: {got[key]!r}"
    for key, value in expected.get("fields", {}).items():
        assert got["fields"].get(key) == value, f"fields.{key}: {got['fields'].get(key)!r}"
    if expected.get("fields") == {}:
        assert got["fields"] == {}
    for key in expected.get("fields_absent", []):
        assert key not in got["fields"]
    for fragment in expected.get("warnings_contain", []):
        assert any(fragment in w for w in got["warnings"]), got["warnings"]
    # Cross-cutting invariants.
    assert got["sha256"] and len(got["sha256"]) == 64
    if got["kind"] in ("auto_reply", "bounce"):
        assert got["automated"] and got["commands"] == []
    if got["kind"] != "form":
        assert got["missing"] == []
