"""IMAP mailbox source (imapclient): Exchange Online, Dovecot, pymap.

How it behaves:
- State per folder in the SyncStateStore: UIDVALIDITY and `last_uid`, the highest UID below
  which every message handed out has been settled. Messages still in the folder above it are
  handed out again (the pipeline recognises them and only settles); LEFT ones below it are not.
  A new UIDVALIDITY resets `last_uid` to 0: a rescan, matched by the pipeline on Message-ID+hash.
- Uses only what Exchange Online offers: no CONDSTORE, no keywords. Sizes (RFC822.SIZE) are
  read first; an oversize message goes to quarantine without being downloaded. Bodies are
  fetched with BODY.PEEK[] in batches of explicit UIDs.
- settle() moves with UID MOVE, or COPY + \\Deleted + UID EXPUNGE when MOVE is missing; the
  target folder is created if absent.
- IDLE is only a wake-up signal: re-issued every `idle_renew_seconds`; a readable socket with
  nothing to read is a dropped connection (imapclient's idle_check hides EOF); a UID SEARCH
  runs every `reconcile_seconds` whatever IDLE says.
- Connection failures back off exponentially with jitter; time and sleep are injectable.
"""

from __future__ import annotations

import imaplib
import logging
import random
import select
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError
from imapclient.imapclient import _parse_untagged_response

from mailflow.connection.errors import MailboxAuthError, MailboxUnavailable
from mailflow.connection.oauth import (
    OUTLOOK_SCOPE,
    TokenProvider,
    token_provider_from_config,
)
from mailflow.connection.tls import check_tls_mode, ssl_context_from_options
from mailflow.connector_options import ImapOptions, read_options
from mailflow.connectors import ConnectorEnv, SyncState, SyncStateStore
from mailflow.errors import ConfigError
from mailflow.sources.base import InboundMail, MailboxSource, Outcome, folder_options, target_folder

log = logging.getLogger(__name__)

# Errors that mean "the connection is gone or unusable": reconnect.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError, imaplib.IMAP4.abort, EOFError, ssl.SSLError,
)


@dataclass(frozen=True)
class ImapSettings:
    host: str
    port: int
    username: str
    tls: str = "implicit"
    folder: str = "INBOX"
    processed_folder: str = "Processed"
    quarantine_folder: str = "Quarantine"
    unrelated_folder: str | None = None       # None: unrelated mail stays in the watched folder
    batch_size: int = 25
    max_message_bytes: int = 25 * 1024 * 1024
    timeout: float = 30.0                      # socket timeout for every command
    use_idle: bool = True
    poll_seconds: float = 60.0                 # without IDLE: how long wait_for_mail waits
    idle_renew_seconds: float = 300.0          # RFC 2177 says < 29 min; firewalls drop sooner
    reconcile_seconds: float = 120.0           # UID SEARCH whatever IDLE says
    backoff_initial: float = 1.0
    backoff_max: float = 300.0




class ImapSource(MailboxSource):
    name = "imap"

    def __init__(self, settings: ImapSettings, *, password: str | None = None,
                 token_provider: TokenProvider | None = None,
                 state_store: SyncStateStore, ssl_context: ssl.SSLContext | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 jitter: Callable[[], float] = random.random,
                 client_factory: Callable[..., IMAPClient] = IMAPClient) -> None:
        if (password is None) == (token_provider is None):
            raise ValueError("give exactly one of password or token_provider")
        self.settings = settings
        self._password = password
        self._tokens = token_provider
        self._store = state_store
        self._ssl_context = ssl_context
        self._monotonic = monotonic
        self._sleep = sleep
        self._jitter = jitter
        self._client_factory = client_factory
        self._conn: IMAPClient | None = None
        self._caps: frozenset[str] = frozenset()
        self._uidvalidity: int | None = None
        self._known_folders: set[str] = set()
        self._failures = 0
        self._next_attempt = 0.0
        self._last_search = 0.0
        self._pending: set[int] = set()        # handed out this pass, not settled yet
        self._settled: set[int] = set()
        self.state_key = f"imap:{settings.username}@{settings.host}"
        self.on_oversize: Callable[[int, int, str | None], None] | None = None

    # ------------------------------------------------------------------ config

    @classmethod
    def from_config(cls, options: Mapping[str, Any], env: ConnectorEnv) -> ImapSource:
        where = env.where
        options = read_options(ImapOptions, options, env.where)   # every key and type (connector_options.py)
        for key in ("host", "username"):
            if not options.get(key):
                raise ConfigError(f"{where}: {key}: required for an IMAP mailbox")
        host = str(options["host"])
        tls = check_tls_mode(options, host, where, "implicit")
        default_port = 993 if tls == "implicit" else 143
        try:
            settings = ImapSettings(
                host=host, port=int(options.get("port", default_port)),
                username=str(options["username"]), tls=tls, **folder_options(options, "INBOX"),
                batch_size=int(options.get("batch_size", 25)),
                timeout=float(options.get("timeout", 30)),
                use_idle=bool(options.get("idle", True)),
                poll_seconds=float(options.get("poll_seconds", 60)),
                idle_renew_seconds=float(options.get("idle_renew_seconds", 300)),
                reconcile_seconds=float(options.get("reconcile_seconds", 120)),
                backoff_initial=float(options.get("backoff_initial", 1)),
                backoff_max=float(options.get("backoff_max", 300)),
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: a number is not valid ({exc})") from None
        if settings.batch_size < 1 or settings.max_message_bytes < 1:
            raise ConfigError(f"{where}: batch_size and max_message_bytes must be positive")
        auth = str(options.get("auth", "password"))
        if auth == "password":
            creds: dict[str, Any] = {"password": env.secret(options, "password")}
        elif auth == "xoauth2":
            creds = {"token_provider": token_provider_from_config(options, env, OUTLOOK_SCOPE)}
        else:
            raise ConfigError(f"{where}: auth: {auth!r} is not one of password, xoauth2")
        ctx = ssl_context_from_options(options, env) if tls != "none" else None
        return cls(settings, state_store=env.state_store, ssl_context=ctx, **creds)

    # ------------------------------------------------------------------ connection

    def _connect(self) -> IMAPClient:
        s = self.settings
        conn = self._client_factory(s.host, s.port, ssl=s.tls == "implicit",
                                    ssl_context=self._ssl_context, timeout=s.timeout)
        conn.normalise_times = False   # INTERNALDATE with the server's offset, not naive local time
        try:
            if s.tls == "starttls":
                conn.starttls(self._ssl_context)
            if self._tokens is not None:
                try:
                    conn.oauth2_login(s.username, self._tokens.token())
                except LoginError:
                    self._tokens.invalidate()  # a stale token: the next attempt gets a new one
                    raise
            else:
                assert self._password is not None
                conn.login(s.username, self._password)
            self._caps = frozenset(c.decode().upper() for c in conn.capabilities())
            self._select(conn)
        except BaseException:
            _shutdown(conn)
            raise
        return conn

    def _select(self, conn: IMAPClient) -> None:
        info = conn.select_folder(self.settings.folder)
        uidvalidity = int(info[b"UIDVALIDITY"])
        state = self._state()
        if state.uidvalidity != uidvalidity:
            if state.uidvalidity is not None:
                log.warning("%s: UIDVALIDITY of %s changed (%s -> %s): rescanning the folder",
                            self.state_key, self.settings.folder, state.uidvalidity, uidvalidity)
            state = SyncState(uidvalidity=uidvalidity, last_uid=0, cursor=state.cursor)
            self._save(state)
        self._uidvalidity = uidvalidity

    def _client(self) -> IMAPClient:
        """The connected, selected client, or MailboxUnavailable (respecting the backoff)."""
        if self._conn is not None:
            return self._conn
        now = self._monotonic()
        if now < self._next_attempt:
            raise MailboxUnavailable(f"{self.state_key}: not reachable; next attempt in "
                                     f"{self._next_attempt - now:.0f} s")
        try:
            self._conn = self._connect()
        except LoginError as exc:
            self._note_failure(now)
            raise MailboxAuthError(f"{self.state_key}: the server refused the login "
                                   f"({_short(exc)})") from None
        except (*CONNECTION_ERRORS, IMAPClientError) as exc:
            self._note_failure(now)
            raise MailboxUnavailable(f"{self.state_key}: cannot connect "
                                     f"({type(exc).__name__}: {_short(exc)})") from None
        if self._failures:
            log.info("%s: reconnected after %d failed attempts", self.state_key, self._failures)
        self._failures = 0
        self._next_attempt = 0.0
        self._last_search = self._monotonic()
        return self._conn

    def _note_failure(self, now: float) -> None:
        """Exponential backoff with 'equal jitter': half fixed, half random."""
        self._failures += 1
        s = self.settings
        delay = min(s.backoff_max, s.backoff_initial * 2 ** (self._failures - 1))
        self._next_attempt = now + delay / 2 + self._jitter() * delay / 2

    def _drop(self, why: str) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            log.warning("%s: connection lost (%s); reconnecting", self.state_key, why)
            _shutdown(conn)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.logout()
            except Exception:  # noqa: BLE001 - closing anyway
                _shutdown(conn)

    # ------------------------------------------------------------------ state

    def _state(self) -> SyncState:
        return self._store.load(self.state_key, self.settings.folder) or SyncState()

    def _save(self, state: SyncState) -> None:
        self._store.save(self.state_key, self.settings.folder, state)

    def _advance(self, uid: int) -> None:
        """Record `uid` as settled; raise last_uid over every contiguous settled UID."""
        self._pending.discard(uid)
        self._settled.add(uid)
        state = self._state()
        limit = min(self._pending) if self._pending else None
        best = max((u for u in self._settled if limit is None or u < limit), default=0)
        if best > state.last_uid:
            self._save(SyncState(state.uidvalidity, best, state.cursor))

    # ------------------------------------------------------------------ fetch

    def _new_uids(self, conn: IMAPClient) -> list[int]:
        last = self._state().last_uid
        self._last_search = self._monotonic()
        conn.noop()  # servers report mail appended by other sessions at command boundaries
        # `n:*` always matches the highest UID, even when it is below n: filter.
        return sorted(u for u in conn.search(["UID", f"{last + 1}:*"]) if u > last)

    def fetch(self) -> Iterator[InboundMail]:
        conn = self._client()
        try:
            uids = self._new_uids(conn)
        except CONNECTION_ERRORS as exc:
            self._drop(type(exc).__name__)
            conn = self._client()          # one immediate retry; then the backoff applies
            try:
                uids = self._new_uids(conn)
            except CONNECTION_ERRORS as exc2:
                self._drop(type(exc2).__name__)
                raise MailboxUnavailable(f"{self.state_key}: connection lost") from None
        self._pending.clear()
        self._settled.clear()
        uidvalidity = self._uidvalidity
        folder = self.settings.folder
        bs = self.settings.batch_size
        for i in range(0, len(uids), bs):
            batch = uids[i:i + bs]
            try:
                wanted = self._screen_sizes(conn, batch)
                bodies = conn.fetch(list(wanted), ["BODY.PEEK[]"]) if wanted else {}
            except CONNECTION_ERRORS as exc:
                self._drop(type(exc).__name__)
                raise MailboxUnavailable(f"{self.state_key}: connection lost while "
                                         f"fetching") from None
            for uid in wanted:
                data = bodies.get(uid)
                if data is None or b"BODY[]" not in data:
                    continue  # expunged meanwhile by someone else
                self._pending.add(uid)
                yield InboundMail(raw=bytes(data[b"BODY[]"]),
                                  source_id=f"imap:{folder}:{uidvalidity}:{uid}",
                                  folder=folder, uidvalidity=uidvalidity, uid=uid, arrived_at=wanted[uid])
                # The pipeline may have settled (or reconnected) between yields.
                conn = self._client()

    def _screen_sizes(self, conn: IMAPClient, batch: list[int]) -> dict[int, datetime | None]:
        """UIDs small enough to download, each with when the server received it (INTERNALDATE,
        in the same FETCH); oversize ones are quarantined unread."""
        found = conn.fetch(batch, ["RFC822.SIZE", "INTERNALDATE"])
        wanted: dict[int, datetime | None] = {}
        for uid in batch:
            data = found.get(uid, {})
            size = int(data.get(b"RFC822.SIZE", 0))
            if uid not in found:
                continue
            if size <= self.settings.max_message_bytes:
                wanted[uid] = _aware(data.get(b"INTERNALDATE"))
                continue
            message_id = _message_id(conn, uid)
            log.warning("%s: UID %d (Message-ID %s) is %d bytes, over max_message_bytes %d: "
                        "quarantined without downloading", self.state_key, uid, message_id,
                        size, self.settings.max_message_bytes)
            self._pending.add(uid)
            self._move(conn, uid, self.settings.quarantine_folder)
            self._advance(uid)
            if self.on_oversize is not None:
                self.on_oversize(uid, size, message_id)
        return wanted

    # ------------------------------------------------------------------ settle

    def settle(self, mail: InboundMail, outcome: Outcome, reason: str | None = None) -> None:
        if mail.uid is None:
            raise ValueError("not an IMAP message")
        target = target_folder(self.settings, outcome)
        if target is not None:
            for attempt in (1, 2):
                conn = self._client()
                if mail.uidvalidity != self._uidvalidity:
                    # Its UID means nothing now; the rescan hands it out again to be settled.
                    log.warning("%s: UID %d not moved: UIDVALIDITY changed since it was fetched",
                                self.state_key, mail.uid)
                    return
                try:
                    self._move(conn, mail.uid, target)
                    break
                except CONNECTION_ERRORS as exc:
                    self._drop(type(exc).__name__)
                    if attempt == 2:
                        raise MailboxUnavailable(f"{self.state_key}: UID {mail.uid} not moved: "
                                                 f"connection lost") from None
        log.debug("%s: UID %d settled %s", self.state_key, mail.uid, Outcome(outcome).value)
        self._advance(mail.uid)

    def has_move(self) -> bool:
        return "MOVE" in self._caps

    def _move(self, conn: IMAPClient, uid: int, folder: str) -> None:
        self._ensure_folder(conn, folder)
        if self.has_move():
            conn.move([uid], folder)
            return
        # RFC 3501 fallback. Without UIDPLUS, a plain EXPUNGE also removes other \Deleted mail.
        conn.copy([uid], folder)
        conn.add_flags([uid], [b"\\Deleted"], silent=True)
        if "UIDPLUS" in self._caps:
            conn.uid_expunge([uid])
        else:
            conn.expunge()

    def _ensure_folder(self, conn: IMAPClient, folder: str) -> None:
        if folder in self._known_folders:
            return
        if not conn.folder_exists(folder):
            log.info("%s: creating folder %s", self.state_key, folder)
            try:
                conn.create_folder(folder)
            except IMAPClientError:
                if not conn.folder_exists(folder):  # created meanwhile by another instance?
                    raise
        self._known_folders.add(folder)

    # ------------------------------------------------------------------ waiting

    @property
    def can_wait(self) -> bool:
        """The daemon waits on wait_for_mail() (IDLE) only when IDLE is enabled."""
        return self.settings.use_idle

    def wait_for_mail(self, timeout: float) -> bool:
        deadline = self._monotonic() + timeout
        try:
            conn = self._client()
        except MailboxUnavailable:
            self._sleep(max(0.0, min(deadline, self._next_attempt) - self._monotonic()))
            return False
        s = self.settings
        if not s.use_idle or "IDLE" not in self._caps:
            return self._poll(conn, deadline)
        try:
            return self._idle(conn, deadline)
        except CONNECTION_ERRORS as exc:
            self._drop(f"during IDLE: {type(exc).__name__}: {_short(exc)[:120]}")
            return True  # let the caller fetch: it reconnects and reconciles

    def _poll(self, conn: IMAPClient, deadline: float) -> bool:
        self._sleep(max(0.0, min(deadline, self._monotonic() + self.settings.poll_seconds)
                        - self._monotonic()))
        return False

    def _idle(self, conn: IMAPClient, deadline: float) -> bool:
        s = self.settings
        while True:
            now = self._monotonic()
            if now >= deadline:
                return False
            if now - self._last_search >= s.reconcile_seconds:
                if self._new_uids(conn):
                    return True
            renew_at = now + s.idle_renew_seconds
            conn.idle()
            woke = self._idle_until(conn, min(deadline, renew_at,
                                              self._last_search + s.reconcile_seconds))
            _, responses = conn.idle_done()  # a silently dropped connection times out here
            if woke or _has_new(responses):
                return True

    def _idle_until(self, conn: IMAPClient, until: float) -> bool:
        """True on EXISTS/RECENT; raises ConnectionError when the server went away.

        imapclient's idle_check() is not used: it reports EOF as a quiet timeout, and reading
        non-blocking it can split a line the server is still writing (imaplib then aborts).
        Here select() says when to read, and whole lines are read with the socket timeout.
        """
        sock = conn.socket()
        while True:
            left = until - self._monotonic()
            if left <= 0:
                return False
            if not self._buffered(conn, sock):
                readable, _, _ = select.select([sock], [], [], min(left, 1.0))
                if not readable:
                    continue
            try:
                line = conn._imap._get_line()  # noqa: SLF001 - blocking, up to the timeout
            except imaplib.IMAP4.abort as exc:  # EOF: imaplib says "socket error: EOF"
                self._conn = None
                _shutdown(conn)
                raise ConnectionResetError(f"during IDLE: {exc}") from None
            response = _parse_untagged_response(line)
            if response[:1] == (b"BYE",):
                self._conn = None
                _shutdown(conn)
                raise ConnectionResetError("server said BYE during IDLE")
            if _has_new([response]):
                return True

    def _buffered(self, conn: IMAPClient, sock: Any) -> bool:
        """Data already read from the socket into imaplib's buffer (select() cannot see it)."""
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True
        peek = getattr(conn._imap.file, "peek", None)  # noqa: SLF001
        if peek is None:
            return False
        sock.setblocking(False)
        try:
            return bool(peek(1))
        except OSError:  # nothing buffered and nothing on the wire (EAGAIN / SSL want-read)
            return False
        finally:
            sock.settimeout(self.settings.timeout)


def _has_new(responses: list[Any]) -> bool:
    return any(len(r) >= 2 and isinstance(r[0], int)
               and (r[1] == b"EXISTS" or (r[1] == b"RECENT" and r[0] > 0)) for r in responses)


def _aware(value: object) -> datetime | None:
    """An INTERNALDATE as an aware UTC time (None when the server sent none or an unreadable one)."""
    if not isinstance(value, datetime):
        return None
    return value.astimezone(UTC)   # a naive value (normalise_times left on) is local time


def _message_id(conn: IMAPClient, uid: int) -> str | None:
    data = conn.fetch([uid], ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]).get(uid, {})
    raw = next((v for k, v in data.items() if k.startswith(b"BODY[HEADER")), b"")
    text = bytes(raw).decode("ascii", "replace").strip()
    return text.split(":", 1)[1].strip() if ":" in text else None


def _shutdown(conn: IMAPClient) -> None:
    try:
        conn.shutdown()
    except Exception:  # noqa: BLE001 - already broken
        pass


def _short(exc: BaseException) -> str:
    text = str(exc)
    if text.startswith("b'") or text.startswith('b"'):
        text = text[2:-1]
    return text[:200]


__all__ = ["ImapSource", "ImapSettings"]
