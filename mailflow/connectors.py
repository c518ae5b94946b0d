"""What sources and transports get from the application when they are built from config.

Each source/transport class offers `from_config(options, env)`: `options` is its TOML table
(its keys and types checked by mailflow/connector_options.py), `env` gives secrets, the clock,
sync-state storage and the var directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mailflow.clock import Clock, SystemClock
from mailflow.errors import ConfigError


@dataclass
class SyncState:
    uidvalidity: int | None = None
    last_uid: int = 0
    cursor: str | None = None  # e.g. a Graph delta link or an EWS sync state


class SyncStateStore(Protocol):
    def load(self, source: str, folder: str) -> SyncState | None: ...

    def save(self, source: str, folder: str, state: SyncState) -> None: ...


class MemorySyncStateStore:
    """For tests and one-shot tools."""

    def __init__(self) -> None:
        self._states: dict[tuple[str, str], SyncState] = {}

    def load(self, source: str, folder: str) -> SyncState | None:
        return self._states.get((source, folder))

    def save(self, source: str, folder: str, state: SyncState) -> None:
        self._states[(source, folder)] = state


@dataclass
class ConnectorEnv:
    where: str = "config"                       # e.g. "mailflow.toml [partnership.mailbox]", for errors
    clock: Clock = field(default_factory=SystemClock)
    state_store: SyncStateStore = field(default_factory=MemorySyncStateStore)
    var_dir: Path = Path("var")
    base_dir: Path = Path(".")                  # relative paths in the config are relative to this

    def secret(self, options: Mapping[str, Any], name: str, required: bool = True) -> str | None:
        """A secret named by `<name>_env` (an environment variable) or `<name>_file` (a file)."""
        if name in options:
            raise ConfigError(f"{self.where}: '{name}' must not be in the file; "
                              f"use '{name}_env' or '{name}_file'")
        env_key, file_key = f"{name}_env", f"{name}_file"
        if env_key in options:
            value = os.environ.get(str(options[env_key]))
            if value is None:
                raise ConfigError(f"{self.where}: {env_key}: environment variable "
                                  f"{options[env_key]!r} is not set")
            return value
        if file_key in options:
            path = self.path(str(options[file_key]))
            try:
                return path.read_text().strip()
            except OSError as exc:
                raise ConfigError(f"{self.where}: {file_key}: cannot read {path} ({exc.strerror})") from None
        if required:
            raise ConfigError(f"{self.where}: missing '{env_key}' or '{file_key}'")
        return None

    def path(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p


def build_connector(kinds: Mapping[str, str], options: Mapping[str, Any], env: ConnectorEnv) -> Any:
    """The class `kinds[options["kind"]]` ("module:Class"), built with its `from_config`."""
    import importlib

    kind = str(options.get("kind"))
    if kind not in kinds:
        raise ConfigError(f"{env.where}: kind: {options.get('kind')!r} is not one of {', '.join(kinds)}")
    module, cls = kinds[kind].split(":")
    return getattr(importlib.import_module(module), cls).from_config(options, env)
