"""ImapSource without a server: backoff with injected time, config validation, XOAUTH2 login."""

from __future__ import annotations

import pytest

from mailflow.connection.errors import MailboxAuthError, MailboxUnavailable
from mailflow.connection.oauth import StaticTokenProvider
from mailflow.connectors import ConnectorEnv, MemorySyncStateStore
from mailflow.errors import ConfigError
from mailflow.sources.factory import build_source
from mailflow.sources.imap import ImapSettings, ImapSource

from .conftest import PASSWORD, USER, imap_source, make_mail


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def refused(*_a, **_k):
    raise ConnectionRefusedError(111, "Connection refused")


def test_backoff_grows_with_jitter_and_never_sleeps_for_real() -> None:
    clock = FakeTime()
    attempts: list[float] = []

    def factory(*a, **k):
        attempts.append(clock.now)
        return refused()

    settings = ImapSettings(host="127.0.0.1", port=1, username=USER, tls="none",
                            backoff_initial=2, backoff_max=30)
    source = ImapSource(settings, password="x", state_store=MemorySyncStateStore(),
                        monotonic=clock.monotonic, sleep=clock.sleep, jitter=lambda: 0.5,
                        client_factory=factory)
    for _ in range(7):
        with pytest.raises(MailboxUnavailable, match="cannot connect"):
            list(source.fetch())
        with pytest.raises(MailboxUnavailable, match="next attempt in"):
            list(source.fetch())            # inside the backoff window: no connection attempt
        assert source.wait_for_mail(3600) is False  # sleeps (fake) until the next attempt
    gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
    # delay d = min(30, 2 * 2**(n-1)); waited d/2 + jitter*d/2 = 0.75 d
    assert gaps == [1.5, 3.0, 6.0, 12.0, 22.5, 22.5]
    assert len(attempts) == 7


def test_backoff_resets_after_success(pymap_server) -> None:
    clock = FakeTime()
    calls = {"n": 0}
    from imapclient import IMAPClient

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] <= 2:
            return refused()
        return IMAPClient(*a, **k)

    settings = ImapSettings(host=pymap_server.host, port=pymap_server.port, username=USER,
                            tls="none", timeout=5)
    source = ImapSource(settings, password=PASSWORD, state_store=MemorySyncStateStore(),
                        monotonic=clock.monotonic, sleep=clock.sleep, jitter=lambda: 0.0,
                        client_factory=flaky)
    for _ in range(2):
        with pytest.raises(MailboxUnavailable):
            list(source.fetch())
        clock.now += 10
    pymap_server.append(make_mail()[1])
    assert len(list(source.fetch())) == 1
    assert source._failures == 0  # noqa: SLF001 - the failure count resetting is the point


def test_wrong_password_is_an_auth_error(pymap_server) -> None:
    settings = ImapSettings(host=pymap_server.host, port=pymap_server.port, username=USER,
                            tls="none", timeout=5)
    source = ImapSource(settings, password="wrong", state_store=MemorySyncStateStore())
    with pytest.raises(MailboxAuthError, match="refused the login"):
        list(source.fetch())


class RecordingClient:
    """Just enough of IMAPClient for a login and an empty folder."""

    def __init__(self, *a, **k) -> None:
        self.logins: list[tuple[str, str]] = []
        self.kwargs = k

    def oauth2_login(self, user: str, token: str) -> None:
        self.logins.append((user, token))

    def capabilities(self):
        return (b"IMAP4REV1", b"AUTH=XOAUTH2", b"IDLE", b"MOVE", b"UIDPLUS")

    def select_folder(self, folder, readonly=False):
        return {b"UIDVALIDITY": 7, b"EXISTS": 0}

    def search(self, criteria):
        return []

    def noop(self):
        return b"OK", []

    def shutdown(self) -> None:
        pass


def test_xoauth2_logs_in_as_the_shared_mailbox_with_the_token() -> None:
    clients: list[RecordingClient] = []

    def factory(*a, **k):
        clients.append(RecordingClient(*a, **k))
        return clients[-1]

    settings = ImapSettings(host="outlook.office365.com", port=993, username="sab@council.gov.uk")
    source = ImapSource(settings, token_provider=StaticTokenProvider("tok-123"),
                        state_store=MemorySyncStateStore(), client_factory=factory)
    assert list(source.fetch()) == []
    assert clients[0].logins == [("sab@council.gov.uk", "tok-123")]
    assert clients[0].kwargs["ssl"] is True


def env(tmp_path, **secrets) -> ConnectorEnv:
    for name, value in secrets.items():
        (tmp_path / name).write_text(value)
    return ConnectorEnv(where="mailflow.toml [test.mailbox]", base_dir=tmp_path)


def test_from_config(tmp_path) -> None:
    source = build_source({"kind": "imap", "host": "imap.example.org", "username": USER,
                           "password_file": "pw", "idle_renew_seconds": 120},
                          env(tmp_path, pw="secret"))
    assert isinstance(source, ImapSource)
    assert source.settings.port == 993 and source.settings.idle_renew_seconds == 120


@pytest.mark.parametrize("options, message", [
    ({"tls": "none"}, "only to a loopback"),
    ({"tls": "maybe"}, "not one of"),
    ({"colour": "red"}, "unknown key 'colour'"),
    ({"auth": "kerberos"}, "auth: 'kerberos'"),
    ({"auth": "xoauth2"}, "tenant_id"),
    ({"password": "inline"}, "must not be in the file"),
    ({"batch_size": "lots"}, "batch_size: expected an integer, got a string 'lots'"),
    ({"batch_size": 0}, "batch_size: must be > 0"),
    ({"idle": "yes"}, "idle: expected true or false"),
])
def test_config_errors_name_the_key(tmp_path, options, message) -> None:
    base = {"kind": "imap", "host": "imap.example.org", "username": USER, "password_file": "pw"}
    with pytest.raises(ConfigError, match=message) as info:
        build_source({**base, **options}, env(tmp_path, pw="secret"))
    assert str(info.value).startswith("mailflow.toml [test.mailbox]")


def test_plain_allowed_to_loopback(tmp_path, pymap_server) -> None:
    src = imap_source(pymap_server)
    assert src.settings.tls == "none"
    source = build_source({"kind": "imap", "host": "127.0.0.1", "port": pymap_server.port,
                           "username": USER, "password_file": "pw", "tls": "none"},
                          env(tmp_path, pw=PASSWORD))
    assert list(source.fetch()) == []
