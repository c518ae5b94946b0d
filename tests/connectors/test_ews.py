"""EWS source and transport: recorded HTTP exchanges (responses) for auth failure and
throttling through real exchangelib; a stand-in Account for sync rounds and moves."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import responses

from mailflow.connectors import ConnectorEnv, MemorySyncStateStore
from mailflow.errors import ConfigError
from mailflow.sources.base import Outcome
from mailflow.sources.ews import EwsSettings, EwsSource
from mailflow.sources.imap import MailboxAuthError, MailboxUnavailable
from mailflow.transports.base import OutgoingMail, TransientSendError
from mailflow.transports.ews import EwsTransport

from .conftest import make_mail

EWS = "https://outlook.office365.com/EWS/Exchange.asmx"
TOKEN = "https://login.microsoftonline.com/T1/oauth2/v2.0/token"
OPTIONS = {"kind": "ews", "mailbox": "sab@council.gov.uk", "auth": "oauth2", "tenant_id": "T1",
           "client_id": "C1", "client_secret_env": "MAILFLOW_TEST_EWS_SECRET",
           "server": "outlook.office365.com"}
SERVER_BUSY = b"""<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>
<faultcode xmlns:a="http://schemas.microsoft.com/exchange/services/2006/types">a:ErrorServerBusy</faultcode>
<faultstring xml:lang="en-US">The server cannot service this request right now. Try again later.</faultstring>
<detail><e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">ErrorServerBusy</e:ResponseCode>
<e:Message xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">
The server cannot service this request right now. Try again later.</e:Message>
<t:MessageXml xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
<t:Value Name="BackOffMilliseconds">30000</t:Value></t:MessageXml>
</detail></s:Fault></s:Body></s:Envelope>"""


@pytest.fixture
def env(monkeypatch) -> ConnectorEnv:
    monkeypatch.setenv("MAILFLOW_TEST_EWS_SECRET", "s")
    return ConnectorEnv(where="mailflow.toml [p.mailbox]")


def token_ok(r: responses.RequestsMock) -> None:
    r.add(responses.POST, TOKEN, json={"access_token": "tok", "token_type": "Bearer",
                                       "expires_in": 3600})


def test_recorded_auth_failure_is_explained(env) -> None:
    source = EwsSource.from_config(OPTIONS, env)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as r:
        token_ok(r)
        r.add(responses.POST, EWS, status=401)
        with pytest.raises(MailboxAuthError, match="full_access_as_app"):
            list(source.fetch())


def test_recorded_throttling_is_transient(env) -> None:
    source = EwsSource.from_config(OPTIONS, env)
    transport = EwsTransport.from_config({k: v for k, v in OPTIONS.items() if k != "kind"}, env)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as r:
        token_ok(r)
        r.add(responses.POST, EWS, status=500, body=SERVER_BUSY,
              content_type="text/xml; charset=utf-8")
        with pytest.raises(MailboxUnavailable, match="throttling"):
            list(source.fetch())
        mid, raw = make_mail()
        with pytest.raises(TransientSendError, match="throttling"):
            transport.send(OutgoingMail(mid, "sab@council.gov.uk", ("a@b.example",), raw))


def test_config_needs_server_or_autodiscover(env) -> None:
    with pytest.raises(ConfigError, match="either 'server' or 'autodiscover"):
        EwsSource.from_config({k: v for k, v in OPTIONS.items() if k != "server"}, env)
    with pytest.raises(ConfigError, match="DOMAIN"):
        EwsSource.from_config({**OPTIONS, "auth": "ntlm"}, env)


# ---------------------------------------------------------------- a stand-in Account


@dataclass
class Item:
    id: str
    changekey: str
    size: int
    mime_content: bytes = b""


@dataclass
class FakeFolder:
    name: str
    items: list[Item] = field(default_factory=list)
    item_sync_state: str | None = None
    rounds: int = 0

    def sync_items(self, sync_state=None, only_fields=None, max_changes_returned=None):
        # Each sync state "sN" has seen the first N items of the folder's history.
        seen = int(sync_state[1:]) if sync_state else 0
        for item in self.items[seen:]:
            yield "create", item
        self.item_sync_state = f"s{len(self.items)}"


@dataclass
class FakeAccount:
    inbox: FakeFolder = field(default_factory=lambda: FakeFolder("Inbox"))
    moves: list[tuple[str, str]] = field(default_factory=list)
    folders: dict[str, FakeFolder] = field(default_factory=dict)
    fetched: list[str] = field(default_factory=list)

    @property
    def msg_folder_root(self):
        account = self

        class Root:
            @property
            def children(self):
                return list(account.folders.values())

        return Root()

    def fetch(self, ids, only_fields):
        for item_id, _ in ids:
            self.fetched.append(item_id)
            yield next(i for i in self.inbox.items if i.id == item_id)

    def bulk_move(self, ids, to_folder):
        for item_id, _ in ids:
            self.moves.append((item_id, to_folder.name))
        return [True]


def fake_source(account: FakeAccount, store: MemorySyncStateStore, **kw) -> EwsSource:
    for name in ("Processed", "Quarantine"):
        account.folders.setdefault(name, FakeFolder(name))
    return EwsSource(EwsSettings(mailbox="sab@council.local", **kw), lambda: account, store)


def test_sync_round_saved_only_after_every_settle_and_moves_after_commit() -> None:
    account, store = FakeAccount(), MemorySyncStateStore()
    r1, r2 = make_mail()[1], make_mail()[1]
    account.inbox.items = [Item("A", "ck1", len(r1), r1), Item("B", "ck2", len(r2), r2)]
    source = fake_source(account, store)
    got = list(source.fetch())
    assert [g.raw for g in got] == [r1, r2] and account.moves == []
    source.settle(got[0], Outcome.PROCESSED)
    assert account.moves == [("A", "Processed")]
    assert store.load(source.state_key, "Inbox") is None     # B not settled yet
    # A crash here: a new source hands B (and A) out again from the old state.
    again = fake_source(account, store)
    assert len(list(again.fetch())) == 2
    source.settle(got[1], Outcome.LEFT)
    assert store.load(source.state_key, "Inbox").cursor == "s2"
    assert list(fake_source(account, store).fetch()) == []


def test_oversize_item_quarantined_without_mime() -> None:
    account, store = FakeAccount(), MemorySyncStateStore()
    account.inbox.items = [Item("BIG", "ck", 50_000_000)]
    source = fake_source(account, store, max_message_bytes=1_000_000)
    assert list(source.fetch()) == []
    assert account.moves == [("BIG", "Quarantine")] and account.fetched == []
    assert store.load(source.state_key, "Inbox").cursor == "s1"
