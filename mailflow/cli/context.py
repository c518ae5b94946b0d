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

        return load_config(self.config_path)

    @cached_property
    def app(self) -> App:
        """The wired application: config, database (upgraded), policies, sources, transports."""
        from mailflow.app import App

        return App.open(self.config, self.clock)

    def close(self) -> None:
        app = self.__dict__.get("app")
        if app is not None:
            app.close()
