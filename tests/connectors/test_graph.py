"""Graph source and transport against recorded HTTP exchanges (respx)."""

from __future__ import annotations

import base64
import json
import sqlite3
from datetime import UTC, datetime

import httpx
import pytest
import respx

from mailflow.app import App
from mailflow.clock import FixedClock, parse_instant
from mailflow.connection.errors import MailboxAuthError, MailboxUnavailable
from mailflow.connection.graph import GraphClient
from mailflow.connectors import MemorySyncStateStore
from mailflow.sources.base import Outcome
from mailflow.sources.graph import GraphSettings, GraphSource
from mailflow.transports.base import OutgoingMail, PermanentSendError, TransientSendError
from mailflow.transports.graph import GraphTransport
from tests.conftest import make_config, make_form

from .conftest import make_mail
from .helpers import committed_source_ids, ingest_from

BASE = "https://graph.test/v1.0"
USER = f"{BASE}/users/sab%40council.gov.uk"


class Tokens:
    def __init__(self) -> None:
        self.issued = 0

    def token(self) -> str:
        return f"tok-{self.issued}"

    def invalidate(self) -> None:
        self.issued += 1


def client(sleeps: list[float] | None = None, tokens: Tokens | None = None) -> GraphClient:
    return GraphClient(tokens or Tokens(), base_url=BASE, max_retries=2,
                       sleep=(sleeps if sleeps is not None else []).append)


def source(store=None, **kw) -> GraphSource:
    return GraphSource(GraphSettings(mailbox="sab@council.gov.uk", **kw), client(),
                       store or MemorySyncStateStore())


def mock_folders(router: respx.MockRouter) -> None:
    router.get(f"{USER}/mailFolders/inbox").respond(json={"id": "INBOX-ID"})
    router.get(f"{USER}/mailFolders", params={"$filter": "displayName eq 'Processed'"}).respond(
        json={"value": []})
    router.post(f"{USER}/mailFolders").respond(201, json={"id": "PROC-ID"})


@respx.mock(assert_all_called=False)
def test_delta_fetch_raw_mime_and_move_after_commit(respx_mock) -> None:
    mock_folders(respx_mock)
    raw1, raw2 = make_mail()[1], make_mail()[1]
    # The more specific route first: respx takes the first that matches.
    respx_mock.get(f"{USER}/mailFolders/INBOX-ID/messages/delta",
                   params={"$skiptoken": "2"}).respond(json={
                       "value": [], "@odata.deltaLink": f"{USER}/delta?$deltatoken=T1"})
    respx_mock.get(f"{USER}/mailFolders/INBOX-ID/messages/delta").respond(json={
        "value": [{"id": "A", "receivedDateTime": "2026-12-01T09:12:30Z"}, {"id": "B"},
                  {"id": "GONE", "@removed": {"reason": "deleted"}}],
        "@odata.nextLink": f"{USER}/mailFolders/INBOX-ID/messages/delta?$skiptoken=2"})
    respx_mock.get(f"{USER}/messages/A/$value").respond(content=raw1)
    respx_mock.get(f"{USER}/messages/B/$value").respond(content=raw2)
    move_a = respx_mock.post(f"{USER}/messages/A/move").respond(201, json={"id": "A2"})
    move_b = respx_mock.post(f"{USER}/messages/B/move").respond(201, json={"id": "B2"})
    store = MemorySyncStateStore()
    src = source(store)
    got = list(src.fetch())
    assert [m.raw for m in got] == [raw1, raw2]
    # When Exchange received each (receivedDateTime, in the delta's $select): the hourly limit counts by it.
    assert got[0].arrived_at == datetime(2026, 12, 1, 9, 12, 30, tzinfo=UTC) and got[1].arrived_at is None
    assert not move_a.called                            # nothing moves before the commit
    assert store.load(src.state_key, "Inbox") is None   # nor is the round saved
    src.settle(got[0], Outcome.PROCESSED)
    assert json.loads(move_a.calls[0].request.content) == {"destinationId": "PROC-ID"}
    assert store.load(src.state_key, "Inbox") is None
    src.settle(got[1], Outcome.LEFT)
    assert not move_b.called
    assert store.load(src.state_key, "Inbox").cursor == f"{USER}/delta?$deltatoken=T1"
    # Next pass starts from the saved delta link.
    respx_mock.get(f"{USER}/delta", params={"$deltatoken": "T1"}).respond(json={
        "value": [{"id": "B"}], "@odata.deltaLink": f"{USER}/delta?$deltatoken=T2"})
    assert list(src.fetch()) == []                      # B was LEFT: not handed out again
    assert store.load(src.state_key, "Inbox").cursor.endswith("T2")


@respx.mock(assert_all_called=False)
def test_crash_before_settle_hands_out_again(respx_mock) -> None:
    mock_folders(respx_mock)
    respx_mock.get(f"{USER}/mailFolders/INBOX-ID/messages/delta").respond(json={
        "value": [{"id": "A"}], "@odata.deltaLink": f"{USER}/delta?$deltatoken=T1"})
    respx_mock.get(f"{USER}/messages/A/$value").respond(content=make_mail()[1])
    store = MemorySyncStateStore()
    assert len(list(source(store).fetch())) == 1        # then the process dies
    assert len(list(source(store).fetch())) == 1        # same round again


@respx.mock(assert_all_called=False)
def test_oversize_quarantined_without_full_download(respx_mock) -> None:
    respx_mock.get(f"{USER}/mailFolders/inbox").respond(json={"id": "INBOX-ID"})
    respx_mock.get(f"{USER}/mailFolders",
                   params={"$filter": "displayName eq 'Quarantine'"}).respond(
        json={"value": [{"id": "Q-ID", "displayName": "Quarantine"}]})
    respx_mock.get(f"{USER}/mailFolders/INBOX-ID/messages/delta").respond(json={
        "value": [{"id": "BIG"}], "@odata.deltaLink": f"{USER}/delta?$deltatoken=T1"})
    respx_mock.get(f"{USER}/messages/BIG/$value").respond(content=b"x" * 50_000)
    move = respx_mock.post(f"{USER}/messages/BIG/move").respond(201, json={"id": "BIG2"})
    assert list(source(max_message_bytes=10_000).fetch()) == []
    assert json.loads(move.calls[0].request.content) == {"destinationId": "Q-ID"}


@respx.mock(assert_all_called=False)
def test_throttling_honours_retry_after(respx_mock) -> None:
    route = respx_mock.get(f"{USER}/mailFolders/inbox")
    route.side_effect = [httpx.Response(429, headers={"Retry-After": "7"}),
                         httpx.Response(503, headers={"Retry-After": "2"}),
                         httpx.Response(200, json={"id": "INBOX-ID"})]
    sleeps: list[float] = []
    src = GraphSource(GraphSettings(mailbox="sab@council.gov.uk"), client(sleeps),
                      MemorySyncStateStore())
    assert src.folder_id("Inbox") == "INBOX-ID"
    assert sleeps == [7.0, 2.0]


@respx.mock(assert_all_called=False)
def test_throttled_too_long_is_unavailable(respx_mock) -> None:
    respx_mock.get(f"{USER}/mailFolders/inbox").respond(429, headers={"Retry-After": "30"})
    with pytest.raises(MailboxUnavailable, match="retry after 30"):
        list(source().fetch())


@respx.mock(assert_all_called=False)
def test_auth_failures_explained(respx_mock) -> None:
    tokens = Tokens()
    route = respx_mock.get(f"{USER}/mailFolders/inbox")
    route.respond(401, json={"error": {"code": "InvalidAuthenticationToken", "message": "x"}})
    src = GraphSource(GraphSettings(mailbox="sab@council.gov.uk"), client(tokens=tokens),
                      MemorySyncStateStore())
    with pytest.raises(MailboxAuthError, match="admin consent"):
        list(src.fetch())
    assert tokens.issued == 1 and route.call_count == 2   # one refresh, then give up
    assert route.calls[1].request.headers["Authorization"] == "Bearer tok-1"
    route.respond(403, json={"error": {"code": "ErrorAccessDenied", "message": "denied"}})
    with pytest.raises(MailboxAuthError, match="Mail.ReadWrite.*Application Access Policy"):
        list(src.fetch())


def outgoing() -> OutgoingMail:
    mid, raw = make_mail()
    return OutgoingMail(mid, "sab@council.gov.uk", ("a@agency.example",), raw)


@respx.mock(assert_all_called=False)
def test_send_raw_mime(respx_mock) -> None:
    route = respx_mock.post(f"{USER}/sendMail").respond(202)
    t = GraphTransport("sab@council.gov.uk", client())
    mail = outgoing()
    t.send(mail)
    req = route.calls[0].request
    assert req.headers["Content-Type"] == "text/plain"
    assert base64.b64decode(req.content) == mail.raw


@respx.mock(assert_all_called=False)
def test_send_errors(respx_mock) -> None:
    route = respx_mock.post(f"{USER}/sendMail")
    t = GraphTransport("sab@council.gov.uk", client())
    route.respond(429, headers={"Retry-After": "12"})
    with pytest.raises(TransientSendError) as info:
        t.send(outgoing())
    assert info.value.retry_after == 12
    route.respond(400, json={"error": {"code": "ErrorMimeContentInvalid", "message": "bad"}})
    with pytest.raises(PermanentSendError, match="ErrorMimeContentInvalid"):
        t.send(outgoing())
    route.respond(403, json={"error": {"code": "ErrorAccessDenied", "message": "denied"}})
    with pytest.raises(TransientSendError, match="Mail.Send"):
        t.send(outgoing())


@respx.mock(assert_all_called=False)
def test_already_sent_looks_in_sent_items(respx_mock) -> None:
    route = respx_mock.get(f"{USER}/mailFolders/sentitems/messages")
    t = GraphTransport("sab@council.gov.uk", client())
    route.respond(json={"value": [{"id": "S1"}]})
    assert t.already_sent("<a@b>") is True
    assert route.calls[0].request.url.params["$filter"] == "internetMessageId eq '<a@b>'"
    route.respond(json={"value": []})
    assert t.already_sent("<a@b>") is False


def test_from_config_builds_without_network(monkeypatch) -> None:
    from mailflow.connectors import ConnectorEnv
    from mailflow.errors import ConfigError
    from mailflow.sources.factory import build_source
    from mailflow.transports.factory import build_transport

    monkeypatch.setenv("GRAPH_SECRET", "s")
    env = ConnectorEnv(where="mailflow.toml [p.mailbox]")
    options = {"kind": "graph", "mailbox": "sab@council.gov.uk", "tenant_id": "T",
               "client_id": "C", "client_secret_env": "GRAPH_SECRET"}
    assert isinstance(build_source(options, env), GraphSource)
    assert isinstance(build_transport(options, env), GraphTransport)
    with pytest.raises(ConfigError, match="tenant_id"):
        build_source({k: v for k, v in options.items() if k != "tenant_id"}, env)
    with pytest.raises(ConfigError, match="must not be in the file"):
        build_transport({**options, "client_secret": "inline"}, env)


@respx.mock(assert_all_called=False)
def test_pipeline_commits_before_the_move_and_a_failed_move_loses_and_doubles_nothing(
        respx_mock, tmp_path) -> None:
    db_file = tmp_path / "mailflow.db"
    app = App.open(make_config(tmp_path, f"sqlite:///{db_file}"),
                   clock=FixedClock(parse_instant("2026-12-21T10:00:00")))
    mock_folders(respx_mock)
    respx_mock.get(f"{USER}/mailFolders/INBOX-ID/messages/delta").respond(json={
        "value": [{"id": "A"}, {"id": "B"}], "@odata.deltaLink": f"{USER}/delta?$deltatoken=T1"})
    respx_mock.get(f"{USER}/messages/A/$value").respond(content=make_form())
    respx_mock.get(f"{USER}/messages/B/$value").respond(
        content=make_form("sam.sample@asc.swindon.example.org"))
    seen_at_move: dict[str, set[str]] = {}

    def move(request: httpx.Request) -> httpx.Response:
        mid = request.url.path.split("/")[-2]                # .../messages/<id>/move
        seen_at_move.setdefault(mid, committed_source_ids(db_file))
        return httpx.Response(201, json={"id": f"{mid}2"})

    move_a = respx_mock.post(f"{USER}/messages/A/move")
    move_a.side_effect = [httpx.Response(503), httpx.Response(503), httpx.Response(503)]
    move_b = respx_mock.post(f"{USER}/messages/B/move").mock(side_effect=move)

    def run_pass() -> None:
        ingest_from(app, GraphSource(GraphSettings(mailbox="sab@council.gov.uk"), client(),
                                     app.sync_store))

    # First pass: form A is committed, then Graph keeps failing the move.
    with pytest.raises(MailboxUnavailable):
        run_pass()
    assert committed_source_ids(db_file) == {"graph:A"} and not move_b.called

    # Next pass (as after a restart): A is recognised and only moved; B is committed, then moved.
    move_a.side_effect = move
    run_pass()
    assert "graph:B" in seen_at_move["B"]
    with sqlite3.connect(db_file) as conn:
        assert conn.execute("SELECT count(*) FROM cases").fetchone() == (2,)
        kinds = [k for (k,) in conn.execute("SELECT kind FROM outbox")]
    assert kinds.count("acknowledgement") == 2
    assert app.sync_store.load("graph:sab@council.gov.uk", "Inbox").cursor.endswith("T1")
    app.close()
