"""What a command needs, built lazily: a policy command never opens the database."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from mailflow.clock import Clock, FixedClock, SystemClock, parse_instant
from mailflow.errors import ConfigError

if TYPE_CHECKING:
    from mailflow.app import App
    from mailflow.config import Config


class CliContext:
    def __init__(self, config_path: str | None = None, at: str | None = None) -> None:
        self.config_path = config_path
        self.at = at

    @cached_property
    def clock(self) -> Clock:
        if not self.at:
            return SystemClock()
        try:
            return FixedClock(parse_instant(self.at))
        except ValueError as exc:
            raise ConfigError(f"--at {self.at!r}: not an ISO 8601 instant ({exc})") from None

    @cached_property
    def config(self) -> Config:
        from mailflow.config import load_config
        from mailflow.logging_setup import set_log_format

        config = load_config(self.config_path)
        set_log_format(config.logging.format)   # [logging] format: from here on
        return config

    @cached_property
    def app(self) -> App:
        """The wired application: config, database, policies, sources, transports. A database
        whose schema is behind is refused (`SchemaNotCurrent`, exit 2): only `mailflow run` and
        `mailflow db upgrade` migrate, so a `cases list` never changes the schema under a daemon."""
        from mailflow.app import App

        return App.open(self.config, self.clock, upgrade=False)

    def upgraded_app(self) -> App:
        """The application after bringing the schema to head (`mailflow run`; on PostgreSQL under
        an advisory lock, so workers starting together migrate once)."""
        from mailflow.app import App

        if "app" not in self.__dict__:
            self.__dict__["app"] = App.open(self.config, self.clock, upgrade=True)
        return self.app

    def close(self) -> None:
        app = self.__dict__.get("app")
        if app is not None:
            app.close()
