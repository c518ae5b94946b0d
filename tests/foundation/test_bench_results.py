"""bench/RESULTS.md explains every target it finds not met, from bench/limits.toml."""

from __future__ import annotations

from pathlib import Path

from bench.results import Figure, load_limits, unmet_explained

LIMITS = Path(__file__).resolve().parents[2] / "bench" / "limits.toml"


def test_each_target_not_met_is_explained_or_called_unexplained() -> None:
    limits = load_limits(LIMITS)
    figures = [
        Figure("Ingest", "text form: ingest vs bare parse", 84.2, "msg/s", 0.06, ">= 0.5x bare", False),
        Figure("Latency: IMAP arrival to acknowledgement accepted by SMTP (dovecot)", "IDLE: p95", 550, "ms",
               None, "<= 300 ms", False),
        Figure("Sweep: 1,000 due among N open cases (PostgreSQL)", "1,000 due among 1,000,000 open cases",
               1.4, "s", None, "< 1 s", False),
        Figure("Web console at N cases (PostgreSQL)", "dashboard", 198, "ms", None, "< 300 ms", True),
    ]
    text = unmet_explained(figures, limits)
    ingest, idle, sweep = text.split("\n- ")[1:]
    assert ingest.startswith("**Ingest: text form") and "What limits it: A bare parse" in ingest
    assert "NOTIFY_DELAY_MSECS" in idle and "What was tried" in idle
    assert "Not explained in bench/limits.toml" in sweep
    assert "dashboard" not in text
    assert "None: every target was met" in unmet_explained(figures[3:], limits)
