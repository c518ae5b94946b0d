"""JSON log lines: the fields a log platform searches by (case, inbound), taken from `extra` or
from mailflow's own wording, and nothing but the line's own text."""

from __future__ import annotations

import json
import logging

import pytest

from mailflow.logging_setup import JsonLineFormatter, set_log_format


def _line(msg: str, *args: object, **extra: object) -> dict[str, object]:
    record = logging.LogRecord("mailflow.pipeline.apply", logging.INFO, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return json.loads(JsonLineFormatter().format(record))  # type: ignore[no-any-return]


def test_case_and_inbound_fields() -> None:
    line = _line("inbound #%s opened %s", 42, "SSP-2026-0007")
    assert line["case"] == "SSP-2026-0007" and line["inbound"] == 42
    assert line["level"] == "INFO" and line["logger"] == "mailflow.pipeline.apply"
    assert line["message"] == "inbound #42 opened SSP-2026-0007"
    assert set(line) == {"time", "level", "logger", "message", "case", "inbound"}


def test_explicit_fields_win_and_plain_lines_carry_none() -> None:
    assert _line("sent %s", "<SSP-2026-0001.ab@x>", case="SSP-2026-0002")["case"] == "SSP-2026-0002"
    assert set(_line("mailflow daemon started for SSP")) == {"time", "level", "logger", "message"}


def test_unknown_format_refused() -> None:
    with pytest.raises(ValueError, match="expected one of text, json"):
        set_log_format("xml")
