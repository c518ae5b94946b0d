"""The status endpoint in process, over real HTTP on loopback: /healthz judged by the config's
thresholds on a frozen clock (200, then 503 with the rule's reason, then 200 again), 503 when the
database cannot be opened, and /metrics in Prometheus text format counting what a pass did."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mailflow.app import App
from mailflow.clock import FixedClock
from mailflow.config import ConfigError
from mailflow.daemon import run_pass
from mailflow.metrics import register_database
from mailflow.sources.maildir import MaildirSource
from mailflow.status_server import StatusServer, parse_listen
from tests.conftest import make_form


@pytest.fixture
def server(app: App, clock: FixedClock) -> Iterator[StatusServer]:
    from prometheus_client import REGISTRY

    status = StatusServer(app, "127.0.0.1:0", started=clock.now()).start()
    collector = register_database(app)
    yield status
    REGISTRY.unregister(collector)
    status.stop()


def _get(server: StatusServer, path: str) -> tuple[int, str]:
    host, port = server.address
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _healthz(server: StatusServer) -> tuple[int, dict]:  # type: ignore[type-arg]
    code, body = _get(server, "/healthz")
    return code, json.loads(body)


def _samples(server: StatusServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    code, text = _get(server, "/metrics")
    assert code == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_healthz_follows_the_thresholds(server: StatusServer, app: App, clock: FixedClock) -> None:
    code, body = _healthz(server)
    assert code == 200 and body["healthy"] is True and body["database"] == {"reachable": True}
    assert body["partnerships"]["SSP"]["last_mailbox_read"] is None   # not yet, but within the threshold

    clock.advance(timedelta(minutes=app.config.daemon.mailbox_stale_minutes))
    code, body = _healthz(server)
    assert code == 503 and body["healthy"] is False
    assert [p["code"] for p in body["partnerships"]["SSP"]["problems"]] == ["mailbox-never-read"]

    MaildirSource(Path(app.config.partnerships[0].mailbox["path"])).deliver(make_form(), "1.eml")
    assert run_pass(app).errors == []
    code, body = _healthz(server)
    assert code == 200, body
    ssp = body["partnerships"]["SSP"]
    assert ssp["last_mailbox_read"] == clock.now().isoformat()
    assert ssp["outbox_backlog"] == 0 and ssp["oldest_unsent"] is None and ssp["problems"] == []
    assert "Testperson" not in json.dumps(body)   # counts and times, never a person


def test_healthz_503_when_the_database_cannot_be_opened(server: StatusServer, app: App, db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite only: its file is taken away")
    path = Path(app.db.engine.url.database or "")
    shutil.move(path, path.with_suffix(".away"))
    path.mkdir()   # where the file was, a directory: SQLite cannot open it
    app.db.engine.dispose()
    try:
        code, body = _healthz(server)
        assert code == 503 and body["database"]["reachable"] is False and body["healthy"] is False
        assert body["database"]["error"].startswith("OperationalError")
    finally:
        path.rmdir()
        shutil.move(path.with_suffix(".away"), path)
        app.db.engine.dispose()
    assert _healthz(server)[0] == 200


def test_metrics_count_messages_notices_cases_and_durations(server: StatusServer, app: App) -> None:
    before = _samples(server)
    MaildirSource(Path(app.config.partnerships[0].mailbox["path"])).deliver(make_form(), "1.eml")
    assert run_pass(app).errors == []
    after = _samples(server)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("mailflow_messages_total", partnership="SSP", kind="form", outcome="processed") == 1
    assert delta("mailflow_notices_sent_total", partnership="SSP", kind="acknowledgement") == 1
    assert after[("mailflow_cases", (("partnership", "SSP"), ("stage", "1"), ("state", "open")))] == 1
    sent = sum(v - before.get(k, 0.0) for k, v in after.items() if k[0] == "mailflow_notices_sent_total")
    assert after[("mailflow_outbox_messages", (("partnership", "SSP"), ("state", "sent")))] == sent >= 1
    assert delta("mailflow_ingest_duration_seconds_count", partnership="SSP") == 1
    assert delta("mailflow_sweep_duration_seconds_count", partnership="SSP") == 1
    assert after[("mailflow_mailbox_last_success_timestamp_seconds", (("partnership", "SSP"),))] == \
        app.clock.now().timestamp()


def test_unknown_path_and_listen_addresses(server: StatusServer) -> None:
    assert _get(server, "/")[0] == 404
    assert parse_listen("9187") == ("127.0.0.1", 9187)
    assert parse_listen("[::1]:9187") == ("::1", 9187)
    assert parse_listen("0.0.0.0:80") == ("0.0.0.0", 80)
    with pytest.raises(ConfigError, match="expected HOST:PORT"):
        parse_listen("localhost:http")


def test_a_port_in_use_is_a_one_line_error(server: StatusServer, app: App, clock: FixedClock) -> None:
    host, port = server.address
    with pytest.raises(ConfigError, match=rf"\[status\] listen = '{host}:{port}': cannot listen there"):
        StatusServer(app, f"{host}:{port}", started=clock.now())
