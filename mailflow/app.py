"""Wiring: config -> database, policies, renderers, sources and transports, per partnership."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from mailflow.clock import Clock
from mailflow.config import Config, Partnership
from mailflow.core.policy import Policy, load_policies
from mailflow.db.database import Database
from mailflow.db.store import DbSyncStateStore
from mailflow.errors import ConfigError
from mailflow.rendering import Renderer
from mailflow.secret_key import load_secret_key
from mailflow.sources.base import MailboxSource
from mailflow.sources.factory import build_source
from mailflow.transports.base import MailTransport
from mailflow.transports.factory import build_transport


@dataclass
class PartnershipRuntime:
    """Everything one partnership needs at run time, built once."""

    app: App
    config: Partnership
    policy: Policy
    renderer: Renderer
    _source: MailboxSource | None = field(default=None, repr=False)
    _transport: MailTransport | None = field(default=None, repr=False)

    @property
    def prefix(self) -> str:
        return self.config.prefix

    @property
    def source(self) -> MailboxSource:
        if self._source is None:
            env = self.app.config.connector_env(self.config, "mailbox", self.app.clock, self.app.sync_store)
            self._source = build_source(self.config.mailbox, env)
        return self._source

    @property
    def transport(self) -> MailTransport:
        if self._transport is None:
            env = self.app.config.connector_env(self.config, "transport", self.app.clock, self.app.sync_store)
            self._transport = build_transport(self.config.transport, env)
        return self._transport

    @cached_property
    def directory(self):  # type: ignore[no-untyped-def]
        from mailflow.directory import Directory

        return Directory.load(self.config.directory, self.config.business_team)

    def close(self) -> None:
        for conn in (self._source, self._transport):
            if conn is not None:
                conn.close()


class App:
    def __init__(self, config: Config, clock: Clock, db: Database, policies: dict[str, Policy],
                 secret_key: bytes) -> None:
        self.config = config
        self.secret_key = secret_key  # signs reply tokens; see mailflow.secret_key
        self.clock = clock
        self.db = db
        self.policies = policies
        self.sync_store = DbSyncStateStore(db)
        self._runtimes: dict[str, PartnershipRuntime] = {}

    @classmethod
    def open(cls, config: Config, clock: Clock, upgrade: bool = True) -> App:
        policies = load_policies(config.policy_dirs)
        for p in config.partnerships:
            if p.policy not in policies:
                raise ConfigError(f"{config.source_name}: partnership {p.prefix}: unknown policy {p.policy!r}")
        secret_key = load_secret_key(config)  # fail closed: no key, no start
        db = Database(config.database_url)
        try:
            db.upgrade() if upgrade else db.require_head()  # only `run` and `db upgrade` migrate
        except BaseException:
            db.dispose()
            raise
        return cls(config, clock, db, policies, secret_key)

    def runtime(self, partnership: Partnership | str | None = None) -> PartnershipRuntime:
        p = partnership if isinstance(partnership, Partnership) else self.config.partnership(partnership)
        if p.prefix not in self._runtimes:
            self._runtimes[p.prefix] = PartnershipRuntime(
                app=self, config=p, policy=self.policies[p.policy],
                renderer=Renderer(self.config.template_dirs(p)),
            )
        return self._runtimes[p.prefix]

    def runtimes(self) -> list[PartnershipRuntime]:
        return [self.runtime(p) for p in self.config.partnerships]

    def close(self) -> None:
        for rt in self._runtimes.values():
            rt.close()
        self.db.dispose()

