"""The business team's digest, the mail they open first every morning: counts by stage and by
agency, what is overdue and for how long, what falls due in the next two working days, what is
new and what was resolved since the last digest, what awaits written confirmation, what needs a
person (every stalled case, whatever its age: see pipeline/stalls.py), quarantined and unverified
mail, and the watchdog's warnings. With it: a chart of the open cases by stage and age (an inline
PNG) and the Appendix 1 case resolution summary log as a CSV (pipeline/resolution_log.py).

Subject and body name cases by reference, stage and agency only; the adult's details appear in
the CSV only where the partnership's `digest_personal_data` allows.

Scheduled digests go once per period across every worker (pipeline/schedules.py).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from mailflow.charts import open_cases_by_stage_and_age
from mailflow.composer import Attachment
from mailflow.core.humanize import duration
from mailflow.pipeline import schedules
from mailflow.pipeline.notices import business_team
from mailflow.pipeline.outbox import queue_mail
from mailflow.pipeline.resolution_log import filename, resolution_log
from mailflow.pipeline.schedules import Period, due_period, is_claimed, latest_due
from mailflow.queries.overview import Overview, overview

if TYPE_CHECKING:
    from mailflow.app import App, PartnershipRuntime

CHART_CID = "open-cases-chart@mailflow"
LIST_LIMIT = 15          # each list in the digest: this many, then "and N more"
FIRST_LOOKBACK = timedelta(days=7)   # "new since the last digest" when there has been none and no schedule


@dataclass(frozen=True)
class Digest:
    prefix: str
    subject: str
    text: str
    html: str
    overview: Overview
    chart_png: bytes | None      # None when there is no open case to draw
    csv: bytes
    csv_name: str

    @property
    def attachments(self) -> list[Attachment]:
        out = [Attachment(self.csv_name, "text/csv", self.csv)]
        if self.chart_png is not None:
            out.insert(0, Attachment("open-cases.png", "image/png", self.chart_png, content_id=CHART_CID))
        return out

    def preview_html(self) -> str:
        """The HTML with the chart inlined as a data: URI, for a browser (no mail client to resolve cid:)."""
        if self.chart_png is None:
            return self.html
        data = base64.b64encode(self.chart_png).decode("ascii")
        return self.html.replace(f"cid:{CHART_CID}", f"data:image/png;base64,{data}")


@dataclass(frozen=True)
class _Parts:
    context: dict[str, Any]
    overview: Overview
    chart_png: bytes | None
    csv: bytes
    csv_name: str

    def attachments(self) -> list[Attachment]:
        return Digest("", "", "", "", self.overview, self.chart_png, self.csv, self.csv_name).attachments


def _parts(s: Session, rt: PartnershipRuntime, now: datetime, late_since: datetime | None,
           since: datetime | None) -> _Parts:
    since = since or last_digest_at(s, rt, now)
    view = overview(s, rt, now, since, limit=LIST_LIMIT)
    stage_names = {st.number: f"Stage {st.number}" for st in rt.policy.stages}
    chart = (open_cases_by_stage_and_age(view.age_by_stage, view.age_bands, stage_names)
             if view.age_by_stage else None)
    csv = resolution_log(s, rt.prefix, since, rt.config.digest_personal_data, stage_names)
    context: dict[str, Any] = {
        "now": now, "o": view, "late_since": late_since,
        "stage_titles": {st.number: st.title for st in rt.policy.stages},
        "chart_cid": CHART_CID if chart is not None else None, "csv_name": filename(rt.prefix, now),
        "personal_data": rt.config.digest_personal_data, "duration": duration,
    }
    return _Parts(context, view, chart, csv, filename(rt.prefix, now))


def build_digest(s: Session, rt: PartnershipRuntime, now: datetime, late_since: datetime | None = None,
                 since: datetime | None = None) -> Digest:
    """The digest of one partnership as of `now`, in the caller's transaction."""
    parts = _parts(s, rt, now, late_since, since)
    mail = rt.renderer.render("digest", {"partnership": rt.config, "policy": rt.policy, **parts.context})
    return Digest(rt.prefix, mail.subject, mail.text, mail.html, parts.overview, parts.chart_png, parts.csv,
                  parts.csv_name)


def last_digest_at(s: Session, rt: PartnershipRuntime, now: datetime) -> datetime:
    """When the business team last had a digest: the last one sent before `now`, else the period
    before the latest scheduled one, else a week ago."""
    last = schedules.last_claim(s, rt.prefix, "digest", before=now)
    if last is not None and last.claimed_at < now:
        return last.claimed_at
    trigger = rt.app.config.daemon.digest_cron.trigger
    current = latest_due(trigger, now)
    previous = latest_due(trigger, current - timedelta(seconds=1)) if current is not None else None
    return previous or now - FIRST_LOOKBACK


def render_digests(app: App, now: datetime) -> list[Digest]:
    """Every partnership's digest as of `now`, sending nothing (`mailflow digest --preview`)."""
    out = []
    for rt in app.runtimes():
        with app.db.transaction() as s:
            out.append(build_digest(s, rt, now))
    return out


def send_due_digests(app: App, now: datetime) -> list[str]:
    """Each partnership's scheduled digest, once per period across every worker: the period is
    claimed in the transaction that queues the mail. Returns the prefixes sent by this call."""
    period = due_period(app.config.daemon.digest_cron.trigger, now)   # built when the config loaded
    sent: list[str] = []
    if period is None:
        return sent
    for rt in app.runtimes():
        with app.db.transaction() as s:
            if is_claimed(s, rt.prefix, "digest", period.key):   # the usual case: no insert tried
                continue
        if _send(app, rt, now, period):
            sent.append(rt.prefix)
    return sent


def send_digests(app: App, now: datetime) -> int:
    """Send a digest now, outside the schedule (`mailflow digest`); recorded as a manual period,
    so the next digest's "new since the last digest" counts from it."""
    return sum(_send(app, rt, now, None) for rt in app.runtimes())


def _send(app: App, rt: PartnershipRuntime, now: datetime, period: Period | None) -> bool:
    key = period.key if period is not None else f"manual {now.isoformat()}"
    due = period.due_at if period is not None else now
    late = period is not None and period.late
    with app.db.transaction() as s:
        since = last_digest_at(s, rt, now)   # before this period's own claim
        if not schedules.claim(s, rt.prefix, "digest", key, due, now, late=late):
            return False   # another worker has it: normal, not an error
        parts = _parts(s, rt, now, due if late else None, since)
        return queue_mail(s, rt, kind="digest", to=business_team(rt), now=now, context=parts.context,
                          attachments=parts.attachments()) is not None


