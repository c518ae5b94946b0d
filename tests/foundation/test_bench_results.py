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
        Figure("A section nobody wrote up", "a figure nobody explained", 1.4, "s", None, "< 1 s", False),
        Figure("Web console at N cases (PostgreSQL)", "dashboard", 198, "ms", None, "< 300 ms", True),
    ]
    text = unmet_explained(figures, limits)
    ingest, idle, unknown = text.split("\n- ")[1:]
    assert ingest.startswith("**Ingest: text form") and "What limits it: Two parts" in ingest
    assert "parse alone" in ingest
    assert "NOTIFY_DELAY_MSECS" in idle and "What was tried" in idle
    assert unknown.startswith("**A section nobody wrote up") and "Not explained in bench/limits.toml" in unknown
    assert "dashboard" not in text
    assert "None: every target was met" in unmet_explained(figures[3:], limits)
