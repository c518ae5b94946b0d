"""Commands that cannot be meant change nothing and say why: a command whose text is mailflow's
own placeholder (`#resolved <the agreed outcome>`), and #resolved with #escalate in one reply
(ambiguous: neither applies; the sender and the business team are told)."""

from __future__ import annotations

import html
import re

import pytest

from mailflow.resources import bundled_dir
from parsers.replies import extract_commands
from tests.engine.conftest import ASC_MANAGER, BUSINESS, Harness, recipients


def _template_command_lines() -> list[str]:
    """Every `#command <placeholder>` mailflow itself writes, from the bundled templates."""
    found = []
    for path in sorted(bundled_dir("templates").glob("*.j2")):
        text = path.read_text()
        if path.name.endswith(".html.j2"):   # as a mail client shows it
            text = html.unescape(re.sub(r"<[^>]+>", " ", text))
        found += [m.group(0).strip() for m in re.finditer(r"#[a-z]+[ \t]+<[^#\n]*", text)]
    return found


def test_every_placeholder_in_the_templates_is_recognised() -> None:
    lines = _template_command_lines()
    assert len(lines) >= 10 and any("<the agreed outcome>" in ln for ln in lines)
    for line in lines:
        commands, _ = extract_commands(line)
        assert [c.refused for c in commands] == ["placeholder"], line


@pytest.mark.parametrize("body", ["#resolved <the agreed outcome>", "#resolved <outcome>", "#resolved <agreed outcome>",
                                  "#escalate <reason>",
                                  "#withdraw <reason>", "#extend <N> <reason>", "#note <text>",
                                  "#resolved < The agreed outcome >\nwe met on Tuesday"])
def test_a_placeholder_command_is_refused_and_the_sender_told(h: Harness, body: str) -> None:
    ref = h.open_case()
    before = h.snapshot(ref)
    h.reply(ref, ASC_MANAGER, body)
    assert h.snapshot(ref) == before
    name = body.split()[0][1:]
    [refused] = h.events(ref, "command_refused")
    assert refused.detail["command"] == name and "placeholder" in refused.detail["why"]
    [told] = h.outbox(ref, "case_update")
    assert recipients(told) == {ASC_MANAGER} and f"#{name} not applied" in told.subject
    assert "placeholder" in told.raw.decode()
    assert h.events(ref, "resolved") == h.events(ref, "escalated") == h.events(ref, "withdrawn") == []


def test_a_pasted_help_block_applies_nothing(h: Harness) -> None:
    ref = h.open_case()
    before = h.snapshot(ref)
    help_block = h.last_sent(ref, ASC_MANAGER).raw.decode()
    lines = help_block[help_block.index("  #resolved"):help_block.index("A reply without")]
    h.reply(ref, ASC_MANAGER, "Copying the instructions:\n" + lines.replace("\r\n", "\n"))
    assert h.snapshot(ref) == before          # not even #urgent or #confirmed
    assert len(h.events(ref, "command_refused")) == 7


def test_resolved_and_escalate_together_apply_neither(h_any: Harness) -> None:
    h = h_any
    ref = h.open_case()
    before = h.snapshot(ref)
    h.reply(ref, ASC_MANAGER, "#resolved agreed a package of care\n\n#escalate the other agency disagrees")
    assert h.snapshot(ref) == before
    assert sorted(e.detail["command"] for e in h.events(ref, "command_refused")) == ["escalate", "resolved"]
    [told] = h.outbox(ref, "case_update")
    assert recipients(told) == {ASC_MANAGER, BUSINESS}
    assert "neither was applied" in told.raw.decode()
    # What was written is kept on the record.
    assert "agreed a package of care" in h.events(ref, "note")[-1].detail["text"]


def test_a_genuine_command_beside_a_copied_placeholder_still_applies(h: Harness) -> None:
    ref = h.open_case()
    h.reply(ref, ASC_MANAGER, "#resolved agreed at the meeting\n\n#escalate <reason>")
    assert h.case(ref)["state"] == "resolved"
    [refused] = h.events(ref, "command_refused")
    assert refused.detail["command"] == "escalate"
