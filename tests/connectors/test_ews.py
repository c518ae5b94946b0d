"""EWS source and transport through the real exchangelib, against recorded SOAP exchanges
(tests/connectors/recordings/ews, replayed by ews_server.RecordedEws): a sync round, raw MIME,
moves only after the commit, sending with a copy in Sent Items, throttling and auth failures."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlparse

import pytest
import responses

from mailflow.app import App
from mailflow.clock import FixedClock, parse_instant
from mailflow.connection.errors import MailboxAuthError, MailboxUnavailable
from mailflow.connection.exchange import account_from_config
from mailflow.connectors import ConnectorEnv, MemorySyncStateStore
from mailflow.diagnostics import check_source, check_transport
from mailflow.errors import ConfigError
from mailflow.sources.base import Outcome
from mailflow.sources.ews import EwsSettings, EwsSource
from mailflow.transports.base import OutgoingMail, TransientSendError
from mailflow.transports.ews import EwsTransport
from tests.conftest import make_config, make_form, write_config

from .conftest import make_mail
from .ews_server import ENDPOINT, ITEM_A, ITEM_B, ITEM_C, RecordedEws
from .helpers import committed_source_ids, ingest_from

TOKEN = "https://login.microsoftonline.com/T1/oauth2/v2.0/token"
OPTIONS = {"mailbox": "sab@council.example", "auth": "oauth2", "tenant_id": "T1",
           "client_id": "C1", "client_secret_env": "MAILFLOW_TEST_EWS_SECRET",
           "server": "mail.council.example"}


@pytest.fixture
def env(monkeypatch) -> ConnectorEnv:
    monkeypatch.setenv("MAILFLOW_TEST_EWS_SECRET", "s")
    return ConnectorEnv(where="mailflow.toml [p.mailbox]", state_store=MemorySyncStateStore())


@pytest.fixture
def http() -> responses.RequestsMock:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, TOKEN, json={"access_token": "tok", "token_type": "Bearer",
                                              "expires_in": 3600})
        yield mock


def test_sync_round_hands_out_arrivals_and_moves_only_when_settled(env, http) -> None:
    (_, raw_a), (_, raw_b) = make_mail(), make_mail()
    server = RecordedEws(mime={ITEM_A: raw_a, ITEM_B: raw_b, ITEM_C: b"never fetched"},
                         folders={"Processed": "AAMkPROC"}).install(http)
    source = EwsSource.from_config(OPTIONS, env)
    got = list(source.fetch())
    # Only the two arrivals: the round's Update, ReadFlagChange and Delete are not new mail.
    assert [m.raw for m in got] == [raw_a, raw_b]
    assert got[0].source_id.startswith(f"ews:{ITEM_A}:")
    # When Exchange received each (DateTimeReceived): the sender's hourly limit counts by it.
    assert got[0].arrived_at == datetime(2026, 12, 1, 9, 12, 30, tzinfo=UTC) and got[1].arrived_at is None
    sync = next(r for r in server.requests if r.operation == "SyncFolderItems")
    asked = sync.find("m:ItemShape/t:AdditionalProperties")
    assert asked is not None and "item:DateTimeReceived" in {e.get("FieldURI") for e in asked}
    assert "MoveItem" not in server.operations()
    assert env.state_store.load(source.state_key, "Inbox") is None

    source.settle(got[0], Outcome.PROCESSED)
    assert server.moves == [(ITEM_A, "Processed")] and "CreateFolder" not in server.operations()
    assert env.state_store.load(source.state_key, "Inbox") is None      # B is not settled yet

    source.settle(got[1], Outcome.QUARANTINED)                           # folder made on demand
    assert server.moves[-1] == (ITEM_B, "Quarantine") and "CreateFolder" in server.operations()
    assert env.state_store.load(source.state_key, "Inbox").cursor.endswith("S1")

    # The next round resumes from the saved state; C is 40 MB: quarantined, never downloaded.
    server.requests.clear()
    assert list(source.fetch()) == []
    sync = next(r for r in server.requests if r.operation == "SyncFolderItems")
    assert sync.find("m:SyncState").text.endswith("S1")
    assert server.moves[-1] == (ITEM_C, "Quarantine")
    assert "GetItem" not in server.operations()
    assert env.state_store.load(source.state_key, "Inbox").cursor.endswith("S2")


def test_unrelated_mail_left_in_place_is_not_handed_out_again(env, http) -> None:
    server = RecordedEws(mime={ITEM_A: make_mail()[1], ITEM_B: make_mail()[1]}).install(http)
    source = EwsSource.from_config(OPTIONS, env)
    for mail in source.fetch():
        source.settle(mail, Outcome.LEFT)
    assert server.moves == [] and env.state_store.load(source.state_key, "Inbox").cursor.endswith("S1")


def test_item_deleted_between_sync_and_fetch_is_skipped(env, http) -> None:
    raw_b = make_mail()[1]
    RecordedEws(mime={ITEM_B: raw_b}).install(http)          # A was deleted by someone meanwhile
    source = EwsSource.from_config(OPTIONS, env)
    got = list(source.fetch())
    assert [m.raw for m in got] == [raw_b]
    source.settle(got[0], Outcome.LEFT)
    assert env.state_store.load(source.state_key, "Inbox").cursor.endswith("S1")


# ---------------------------------------------------------------- the whole pipeline


def test_pipeline_commits_before_the_move_and_a_failed_move_loses_and_doubles_nothing(
        tmp_path, env, http) -> None:
    db_file = tmp_path / "mailflow.db"
    app = App.open(make_config(tmp_path, f"sqlite:///{db_file}"),
                   clock=FixedClock(parse_instant("2026-12-21T10:00:00")))
    seen_at_move: dict[str, set[str]] = {}
    server = RecordedEws(mime={ITEM_A: make_form(), ITEM_B: make_form("sam.sample@asc.swindon.example.org")},
                         folders={"Processed": "AAMkPROC"}).install(http)
    server.before_move = lambda item: seen_at_move.setdefault(item, committed_source_ids(db_file))

    def run_pass() -> None:
        ingest_from(app, EwsSource.from_config(OPTIONS, ConnectorEnv(state_store=app.sync_store)))

    # First pass: form A is committed, then Exchange is too busy to move it.
    server.fail["MoveItem"] = (500, "Fault.ErrorServerBusy")
    with pytest.raises(MailboxUnavailable, match="throttling"):
        run_pass()
    assert [s.split(":")[1] for s in committed_source_ids(db_file)] == [ITEM_A]
    assert server.moves == []

    # Next pass (as after a restart): the same round again. A is recognised and only moved;
    # B is new, and is in the database before its move is asked for.
    del server.fail["MoveItem"]
    run_pass()
    assert server.moves == [(ITEM_A, "Processed"), (ITEM_B, "Processed")]
    assert any(s.startswith(f"ews:{ITEM_B}:") for s in seen_at_move[ITEM_B])
    with sqlite3.connect(db_file) as conn:
        assert conn.execute("SELECT count(*) FROM cases").fetchone() == (2,)
        assert conn.execute("SELECT count(*) FROM inbound_messages").fetchone() == (2,)
        kinds = [k for (k,) in conn.execute("SELECT kind FROM outbox")]
    assert kinds.count("acknowledgement") == 2
    assert app.sync_store.load(f"ews:{OPTIONS['mailbox']}", "Inbox").cursor.endswith("S1")
    app.close()


# ---------------------------------------------------------------- sending


def test_transport_sends_raw_mime_saving_a_copy_and_finds_it_in_sent_items(env, http) -> None:
    server = RecordedEws().install(http)
    transport = EwsTransport.from_config(OPTIONS, env)
    mid, raw = make_mail()
    assert transport.already_sent(mid) is False
    transport.send(OutgoingMail(mid, "sab@council.example", ("a@b.example",), raw))
    assert server.sent == [raw]
    create = next(r for r in server.requests if r.operation == "CreateItem")
    assert create.find(".//t:ToRecipients") is None          # Exchange reads To/Cc from the MIME
    assert transport.already_sent(mid) is True
    finds = [r for r in server.requests if r.operation == "FindItem"]
    assert finds[-1].find(".//t:FieldURI").get("FieldURI") == "message:InternetMessageId"


# ---------------------------------------------------------------- failures


def test_throttling_is_transient_and_its_back_off_is_kept(env, http) -> None:
    server = RecordedEws(fail={"SyncFolderItems": (500, "Fault.ErrorServerBusy"),
                               "CreateItem": (500, "Fault.ErrorServerBusy")}).install(http)
    with pytest.raises(MailboxUnavailable, match="throttling"):
        list(EwsSource.from_config(OPTIONS, env).fetch())
    mid, raw = make_mail()
    with pytest.raises(TransientSendError, match="throttling") as caught:
        EwsTransport.from_config(OPTIONS, env).send(OutgoingMail(mid, "sab@council.example",
                                                                 ("a@b.example",), raw))
    assert caught.value.retry_after == 30                   # BackOffMilliseconds 30000
    assert server.sent == []


def test_source_sends_nothing_until_exchanges_back_off_has_passed(env, http) -> None:
    now = [1000.0]
    server = RecordedEws(mime={ITEM_A: make_mail()[1], ITEM_B: make_mail()[1]},
                         fail={"SyncFolderItems": (500, "Fault.ErrorServerBusy")}).install(http)
    source = EwsSource(EwsSettings(mailbox=OPTIONS["mailbox"]), account_from_config(OPTIONS, env),
                       env.state_store, monotonic=lambda: now[0])
    with pytest.raises(MailboxUnavailable, match="throttling"):
        list(source.fetch())
    asked = len(server.requests)
    del server.fail["SyncFolderItems"]
    now[0] += 29                                             # BackOffMilliseconds is 30000
    with pytest.raises(MailboxUnavailable, match="next attempt in 1 s"):
        list(source.fetch())
    assert len(server.requests) == asked                     # Exchange was not asked again
    now[0] += 1
    assert len(list(source.fetch())) == 2


def test_oauth_token_refused_by_the_server_is_an_auth_error(env, http) -> None:
    http.add(responses.POST, ENDPOINT, status=401)
    with pytest.raises(MailboxAuthError, match="full_access_as_app"):
        list(EwsSource.from_config(OPTIONS, env).fetch())


def test_entra_refusing_the_token_is_an_auth_error_with_the_fix(env) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as http:
        http.add(responses.POST, TOKEN, status=401, json={
            "error": "invalid_client", "error_codes": [7000222],
            "error_description": "AADSTS7000222: The provided client secret keys for app 'C1' are expired."})
        server = RecordedEws().install(http)
        with pytest.raises(MailboxAuthError, match="client secret has expired"):
            list(EwsSource.from_config(OPTIONS, env).fetch())
    assert server.requests == []


@pytest.fixture
def autodiscover_dns(monkeypatch) -> Iterator[None]:
    """The two names autodiscover tries resolve (no DNS here); its on-disk cache is emptied."""
    from exchangelib.autodiscover import clear_cache
    from exchangelib.autodiscover.discovery import Autodiscovery
    from exchangelib.errors import TransportError

    def resolve(_self, url: str) -> None:
        if urlparse(url).hostname not in ("council.example", "autodiscover.council.example"):
            raise TransportError(f"{url!r} has no DNS entry")

    monkeypatch.setattr(Autodiscovery, "_ensure_valid_hostname", resolve)
    clear_cache()
    yield
    clear_cache()


def test_autodiscover_finds_the_ews_endpoint(env, http, autodiscover_dns) -> None:
    raw = make_mail()[1]
    server = RecordedEws(mime={ITEM_A: raw, ITEM_B: raw})
    server.install(http)
    server.install_autodiscover(http, "council.example", OPTIONS["mailbox"])
    options = {k: v for k, v in OPTIONS.items() if k != "server"} | {"autodiscover": True}
    assert len(list(EwsSource.from_config(options, env).fetch())) == 2
    assert "SyncFolderItems" in server.operations()


def test_config_needs_server_or_autodiscover(env) -> None:
    with pytest.raises(ConfigError, match="either 'server' or 'autodiscover"):
        EwsSource.from_config({k: v for k, v in OPTIONS.items() if k != "server"}, env)
    with pytest.raises(ConfigError, match="DOMAIN"):
        EwsSource.from_config({**OPTIONS, "auth": "ntlm"}, env)


# ---------------------------------------------------------------- NTLM (on-premises Exchange)


NTLM_OPTIONS = {"mailbox": "sab@council.example", "auth": "ntlm", "username": "COUNCIL\\svc-mailflow",
                "password_env": "MAILFLOW_TEST_EWS_PASSWORD", "server": "mail.council.example"}


@pytest.fixture
def ntlm_user(tmp_path, monkeypatch) -> None:
    """The domain account the recorded server knows (pyspnego's acceptor reads this file)."""
    users = tmp_path / "ntlm-users"
    users.write_text("COUNCIL:svc-mailflow:Correct-Horse-7\n")
    monkeypatch.setenv("NTLM_USER_FILE", str(users))
    # Channel binding hashes the TLS certificate off the socket; replayed HTTP has no socket.
    monkeypatch.setattr("requests_ntlm.HttpNtlmAuth._get_server_cert", lambda self, response: None)


def test_ntlm_handshake_then_sync(env, http, ntlm_user, monkeypatch) -> None:
    monkeypatch.setenv("MAILFLOW_TEST_EWS_PASSWORD", "Correct-Horse-7")
    raw = make_mail()[1]
    server = RecordedEws(mime={ITEM_A: raw, ITEM_B: raw}, ntlm=True).install(http)
    got = list(EwsSource.from_config(NTLM_OPTIONS, env).fetch())
    assert len(got) == 2 and got[0].raw == raw
    assert "SyncFolderItems" in server.operations()


def test_ntlm_wrong_password_is_an_auth_error(env, http, ntlm_user, monkeypatch) -> None:
    monkeypatch.setenv("MAILFLOW_TEST_EWS_PASSWORD", "Tr0ub4dor")
    server = RecordedEws(ntlm=True).install(http)
    with pytest.raises(MailboxAuthError, match="check the credentials"):
        list(EwsSource.from_config(NTLM_OPTIONS, env).fetch())
    assert server.requests == []                             # no SOAP got past the handshake


# ---------------------------------------------------------------- mailflow doctor


def test_doctor_reads_the_folder_and_sent_items(env, http) -> None:
    RecordedEws().install(http)
    ok, lines = check_source({"kind": "ews", **OPTIONS}, env)
    assert ok and lines == ["EWS: connected; folder 'Inbox' has 2 message(s)"]
    ok, lines = check_transport({"kind": "ews", **OPTIONS}, env)
    assert ok and lines[-1] == "ews transport: signed in, Sent Items readable"


def test_doctor_explains_a_refused_ntlm_login(env, http, ntlm_user, monkeypatch) -> None:
    monkeypatch.setenv("MAILFLOW_TEST_EWS_PASSWORD", "Tr0ub4dor")
    RecordedEws(ntlm=True).install(http)
    ok, lines = check_source({"kind": "ews", **NTLM_OPTIONS}, env)
    assert not ok and "refused access to sab@council.example" in lines[0]
    ok, lines = check_transport({"kind": "ews", **NTLM_OPTIONS}, env)
    assert not ok and "Full Access to the mailbox" in lines[0]


def test_doctor_explains_a_mailbox_that_does_not_exist(env, http) -> None:
    RecordedEws(fail={"GetFolder": (200, "GetFolder.no_mailbox")}).install(http)
    ok, lines = check_source({"kind": "ews", **OPTIONS}, env)
    assert not ok and lines[0].endswith("Exchange has no mailbox sab@council.example: check "
                                        "'mailbox' (the primary SMTP address)")


# ---------------------------------------------------------------- the daemon, configured for EWS


def test_run_once_reads_and_answers_through_ews(tmp_path, env, http) -> None:
    """`mailflow run --once` with EWS as both mailbox and transport: forms in, acknowledgements
    out through CreateItem (a copy in Sent Items), the forms moved to Processed."""
    from mailflow.cli.main import main

    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'mailflow.db'}")
    ews = "\n".join(f"{k} = {json.dumps(v)}" for k, v in OPTIONS.items())
    text = config.read_text()
    text = text[:text.index("[partnership.mailbox]")] + (
        f"[partnership.mailbox]\nkind = \"ews\"\n{ews}\n\n[partnership.transport]\nkind = \"ews\"\n{ews}\n")
    config.write_text(text)
    server = RecordedEws(mime={ITEM_A: make_form(), ITEM_B: make_form("sam.sample@asc.swindon.example.org")},
                         folders={"Processed": "AAMkPROC"}).install(http)
    assert main(["--config", str(config), "run", "--once", "--at", "2026-12-21T10:05"]) == 0
    assert server.moves == [(ITEM_A, "Processed"), (ITEM_B, "Processed")]
    acks = [m for m in server.sent if b"Auto-Submitted: auto-replied" in m]
    assert len(acks) == 2 and all(b"[SSP-2026-000" in m for m in acks)
