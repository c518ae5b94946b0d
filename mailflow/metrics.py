"""Every Prometheus metric mailflow exposes on `/metrics` (mailflow/status_server.py), in one place.

Counters and histograms are counted where the work happens (one line at each call site); the
case and outbox figures are read from the database at scrape time (`DatabaseCollector`), so every
worker of an installation reports the same numbers for them (aggregate with max(), not sum()).
Labels carry partnership prefixes, kinds, outcomes, states and stages only: never personal data.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from mailflow.app import App

T = TypeVar("T")

MESSAGES = Counter("mailflow_messages", "Messages read from a mailbox, by what they were and what became of them",
                   ["partnership", "kind", "outcome"])
NOTICES_SENT = Counter("mailflow_notices_sent", "Outgoing messages handed to the transport",
                       ["partnership", "kind"])
NOTICES_FAILED = Counter("mailflow_notices_failed",
                         "Outgoing messages the transport refused (final: given up, the business team told)",
                         ["partnership", "kind", "final"])
STEP_ERRORS = Counter("mailflow_step_errors", "Daemon steps that failed (mailbox, deadlines, outbox)",
                      ["partnership", "step"])
_SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
INGEST_SECONDS = Histogram("mailflow_ingest_duration_seconds", "One read of a mailbox, every new message applied",
                           ["partnership"], buckets=_SECONDS)
SWEEP_SECONDS = Histogram("mailflow_sweep_duration_seconds", "One sweep of due deadlines", ["partnership"],
                          buckets=_SECONDS)
MAILBOX_READ = Gauge("mailflow_mailbox_last_success_timestamp_seconds",
                     "When this worker last read the mailbox successfully (Unix time)", ["partnership"])


def timed(histogram: Histogram, partnership: str, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)`, its duration observed (also when it fails)."""
    started = time.perf_counter()
    try:
        return fn(*args)
    finally:
        histogram.labels(partnership).observe(time.perf_counter() - started)


def mailbox_read(partnership: str, at: datetime) -> None:
    MAILBOX_READ.labels(partnership).set(at.timestamp())


class DatabaseCollector(Collector):
    """Cases by partnership, state and stage; the outbox by state and the age of its oldest unsent
    message; read from the database at each scrape (one GROUP BY each)."""

    def __init__(self, app: App) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from sqlalchemy import func, select

        from mailflow.db.models import Case, OutboxMessage

        cases = GaugeMetricFamily("mailflow_cases", "Cases by state and stage",
                                  labels=["partnership", "state", "stage"])
        outbox = GaugeMetricFamily("mailflow_outbox_messages", "Outgoing messages by state",
                                   labels=["partnership", "state"])
        oldest = GaugeMetricFamily("mailflow_outbox_oldest_unsent_timestamp_seconds",
                                   "When the oldest message still waiting to be sent was queued (Unix time)",
                                   labels=["partnership"])
        try:
            with self.app.db.transaction() as s:
                by_case = s.execute(select(Case.partnership, Case.state, Case.stage, func.count())
                                    .group_by(Case.partnership, Case.state, Case.stage)).all()
                by_outbox = s.execute(select(OutboxMessage.partnership, OutboxMessage.state, func.count())
                                      .group_by(OutboxMessage.partnership, OutboxMessage.state)).all()
                oldest_rows = s.execute(select(OutboxMessage.partnership, func.min(OutboxMessage.created_at))
                                        .where(OutboxMessage.state.in_(("pending", "sending")))
                                        .group_by(OutboxMessage.partnership)).all()
        except Exception:  # noqa: BLE001 - /healthz says the database is unreachable; metrics stay up
            return
        for partnership, state, stage, n in by_case:
            cases.add_metric([partnership, state, str(stage)], n)
        for partnership, state, n in by_outbox:
            outbox.add_metric([partnership, state], n)
        for partnership, at in oldest_rows:
            if at is not None:
                oldest.add_metric([partnership], _as_utc(at).timestamp())
        yield cases
        yield outbox
        yield oldest


def _as_utc(at: datetime) -> datetime:
    from datetime import UTC

    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)  # SQLite's aggregate drops the zone


def register_database(app: App, registry: CollectorRegistry = REGISTRY) -> DatabaseCollector:
    collector = DatabaseCollector(app)
    registry.register(collector)
    return collector
