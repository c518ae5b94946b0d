"""Configuration: a TOML file (or the embedded default), validated into typed settings.

Lookup order: --config PATH, $MAILFLOW_CONFIG, ./mailflow.toml, else the embedded default
(SQLite and a Maildir under ./var, the file transport, one partnership on the Swindon policy).
Every error names the file, the key and what is wrong.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailflow.clock import Clock
from mailflow.connectors import ConnectorEnv, SyncStateStore
from mailflow.errors import ConfigError, unknown_key_error
from mailflow.resources import bundled_dir
from parsers import ParseLimits as Limits  # [limits] in the config are the parser's limits

EMBEDDED = "<embedded default>"
_PREFIX = re.compile(r"^[A-Z][A-Z0-9]{1,9}$")
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


@dataclass(frozen=True)
class DaemonSettings:
    poll_seconds: int = 60          # reconcile the mailbox at least this often (IDLE wakes sooner)
    sweep_seconds: int = 60         # look for due deadlines this often
    digest_cron: str = "mon-fri 08:00"  # days and UK time of the business-team digest
    outbox_max_attempts: int = 8
    mailbox_stale_minutes: int = 30  # watchdog: mailbox not read successfully for this long
    outbox_stale_minutes: int = 30   # watchdog: an unsent message older than this
    sender_messages_per_hour: int = 20  # more from one sender is a loop or a flood: not acted on
    reply_token_days: int = 60      # a reply token acts for this many days after the mail that carried it


@dataclass(frozen=True)
class Partnership:
    name: str
    prefix: str
    policy: str
    address: str
    business_team: tuple[str, ...]
    mailbox: Mapping[str, Any]
    transport: Mapping[str, Any]
    directory: Path | None = None
    subject_prefix: str = ""
    templates_dir: Path | None = None
    index: int = 0
    # The case's details and the original form go with escalations, business copies and final
    # alerts; off for a partnership whose transport is not a secure route.
    send_form_with_escalations: bool = True


@dataclass(frozen=True)
class Config:
    path: Path | None
    base_dir: Path
    var_dir: Path
    database_url: str
    policies_dir: Path | None
    templates_dir: Path | None
    secret_env: str | None
    secret_file: Path | None
    message_id_domain: str
    partnerships: tuple[Partnership, ...]
    limits: Limits = field(default_factory=Limits)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)

    @property
    def source_name(self) -> str:
        return str(self.path) if self.path else EMBEDDED

    @property
    def policy_dirs(self) -> list[Path]:
        """Bundled policies first; a configured directory overrides them by name."""
        dirs = [bundled_dir("policies")]
        if self.policies_dir is not None:
            dirs.append(self.policies_dir)
        return dirs

    def template_dirs(self, partnership: Partnership | None = None) -> list[Path]:
        """Most specific first: the partnership's, the installation's, the bundled templates."""
        dirs = []
        if partnership is not None and partnership.templates_dir is not None:
            dirs.append(partnership.templates_dir)
        if self.templates_dir is not None:
            dirs.append(self.templates_dir)
        dirs.append(bundled_dir("templates"))
        return dirs

    def partnership(self, name: str | None = None) -> Partnership:
        if name is None:
            return self.partnerships[0]
        for p in self.partnerships:
            if name in (p.name, p.prefix):
                return p
        raise ConfigError(f"no partnership named {name!r} in {self.source_name}")

    def connector_env(self, partnership: Partnership, table: str, clock: Clock | None = None,
                      state_store: SyncStateStore | None = None) -> ConnectorEnv:
        env = ConnectorEnv(where=f"{self.source_name}: [partnership.{table}] of {partnership.prefix}",
                           var_dir=self.var_dir, base_dir=self.base_dir)
        if clock is not None:
            env.clock = clock
        if state_store is not None:
            env.state_store = state_store
        return env


# ---------------------------------------------------------------------------- loading

def config_path_from(cli_path: str | None) -> Path | None:
    if cli_path:
        return Path(cli_path)
    if os.environ.get("MAILFLOW_CONFIG"):
        return Path(os.environ["MAILFLOW_CONFIG"])
    local = Path("mailflow.toml")
    return local if local.exists() else None


def load_config(cli_path: str | None = None) -> Config:
    path = config_path_from(cli_path)
    if path is None:
        return embedded_default()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    return parse_config(data, path)


def embedded_default(base_dir: Path | None = None) -> Config:
    """No config at all: everything under ./var, the Swindon policy, the example directory."""
    base = (base_dir or Path.cwd()).resolve()
    data = {
        "partnership": [{
            "name": "Swindon Safeguarding Partnership (example)",
            "prefix": "SSP",
            "policy": "swindon",
            "address": "safeguarding@ssp.example.org",
            "business_team": ["business.team@ssp.example.org"],
            "directory": str(bundled_dir("examples") / "directory.example.toml"),
            "mailbox": {"kind": "maildir", "path": "var/mail"},
            "transport": {"kind": "file", "path": "var/outbox"},
        }],
    }
    return parse_config(data, None, base_dir=base)


# The allowed keys of each table (a new setting is one line here and one in config.example.toml).
_TABLES = ("mailflow", "daemon", "limits", "partnership")
_MAILFLOW_KEYS: dict[str, type | tuple[type, ...]] = {
    "database_url": str, "var_dir": str, "policies_dir": str, "templates_dir": str,
    "secret_env": str, "secret_file": str, "message_id_domain": str,
}
_PARTNERSHIP_KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str, "prefix": str, "policy": str, "address": str, "business_team": list,
    "directory": str, "subject_prefix": str, "templates_dir": str, "mailbox": dict, "transport": dict,
    "send_form_with_escalations": bool,
}
_PARTNERSHIP_REQUIRED = ("name", "prefix", "policy", "address", "business_team", "mailbox", "transport")


def parse_config(data: Mapping[str, Any], path: Path | None, base_dir: Path | None = None) -> Config:
    where = str(path) if path else EMBEDDED
    base = (base_dir or (path.parent if path else Path.cwd())).resolve()
    _only(data, set(_TABLES), where, "")
    top = _table(data, "mailflow", where)
    _only(top, set(_MAILFLOW_KEYS), where, "[mailflow]")
    _types(top, _MAILFLOW_KEYS, where, "[mailflow]")

    def rel(value: str | None) -> Path | None:
        if value is None:
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() else base / p

    var_dir = rel(top.get("var_dir", "var"))
    assert var_dir is not None
    database_url = top.get("database_url") or f"sqlite:///{var_dir / 'mailflow.db'}"
    policies_dir = rel(top.get("policies_dir"))
    templates_dir = rel(top.get("templates_dir"))
    for key, d in (("policies_dir", policies_dir), ("templates_dir", templates_dir)):
        if d is not None and not d.is_dir():
            raise ConfigError(f"{where}: [mailflow] {key}: {d} is not a readable directory")

    limits = Limits(**_section_of(data, "limits", Limits, where))
    daemon = DaemonSettings(**_section_of(data, "daemon", DaemonSettings, where))

    raw_parts = data.get("partnership")
    if not isinstance(raw_parts, list) or not raw_parts:
        raise ConfigError(f"{where}: [[partnership]]: at least one partnership is required")
    partnerships = tuple(_partnership(p, i, where, rel) for i, p in enumerate(raw_parts))
    _unique([p.prefix for p in partnerships], "prefix", where)
    _unique([p.name for p in partnerships], "name", where)

    config = Config(
        path=path, base_dir=base, var_dir=var_dir, database_url=database_url,
        policies_dir=policies_dir, templates_dir=templates_dir,
        secret_env=top.get("secret_env"), secret_file=rel(top.get("secret_file")),
        message_id_domain=top.get("message_id_domain", "mailflow.invalid"),
        partnerships=partnerships, limits=limits, daemon=daemon,
    )
    _check_policies_exist(config, where)
    return config


def _partnership(raw: Any, index: int, where: str, rel: Any) -> Partnership:
    label = f"[[partnership]] #{index + 1}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: {label}: expected a table")
    _only(raw, set(_PARTNERSHIP_KEYS), where, label)
    _types(raw, _PARTNERSHIP_KEYS, where, label)
    for key in _PARTNERSHIP_REQUIRED:
        if key not in raw:
            raise ConfigError(f"{where}: {label}: missing required key '{key}'")
    if not _PREFIX.match(raw["prefix"]):
        raise ConfigError(f"{where}: {label} prefix: {raw['prefix']!r} must be 2-10 capitals/digits, "
                          "starting with a letter (e.g. SSP)")
    for addr in [raw["address"], *raw["business_team"]]:
        if not isinstance(addr, str) or not _EMAIL.match(addr):
            raise ConfigError(f"{where}: {label}: {addr!r} is not an email address")
    for key in ("mailbox", "transport"):
        if "kind" not in raw[key]:
            raise ConfigError(f"{where}: {label} {key}: missing 'kind'")
    directory = rel(raw.get("directory"))
    if directory is not None and not directory.is_file():
        raise ConfigError(f"{where}: {label} directory: {directory} is not a readable file")
    templates = rel(raw.get("templates_dir"))
    if templates is not None and not templates.is_dir():
        raise ConfigError(f"{where}: {label} templates_dir: {templates} is not a readable directory")
    return Partnership(
        name=raw["name"], prefix=raw["prefix"], policy=raw["policy"], address=raw["address"],
        business_team=tuple(raw["business_team"]), mailbox=dict(raw["mailbox"]),
        transport=dict(raw["transport"]), directory=directory,
        subject_prefix=raw.get("subject_prefix", ""), templates_dir=templates, index=index,
        send_form_with_escalations=raw.get("send_form_with_escalations", True),
    )


def _check_policies_exist(config: Config, where: str) -> None:
    known = {f.stem for d in config.policy_dirs for f in d.glob("*.toml")}
    for p in config.partnerships:
        if p.policy not in known:
            raise ConfigError(f"{where}: [[partnership]] #{p.index + 1} policy: {p.policy!r} is not a "
                              f"known policy (known: {', '.join(sorted(known)) or 'none'})")


def _table(data: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [{key}]: expected a table")
    return value


def _section_of(data: Mapping[str, Any], key: str, cls: type, where: str) -> dict[str, Any]:
    table = _table(data, key, where)
    defaults = cls()
    fields: dict[str, type | tuple[type, ...]] = {
        f.name: (int, float) if isinstance(getattr(defaults, f.name), float) else type(getattr(defaults, f.name))
        for f in dataclasses.fields(defaults)}
    _only(table, set(fields), where, f"[{key}]")
    _types(table, fields, where, f"[{key}]")
    return table


def _only(table: Mapping[str, Any], allowed: set[str], where: str, label: str) -> None:
    """Every table is closed: a key it does not know (a typo, a secret) is an error, never ignored."""
    for key in table:
        if key not in allowed:
            raise unknown_key_error(f"{where}: {label}" if label else where, key, allowed)


def _types(table: Mapping[str, Any], types: Mapping[str, type | tuple[type, ...]], where: str,
           label: str) -> None:
    for key, value in table.items():
        expected = types.get(key)
        if expected is None:
            continue
        if isinstance(value, bool) and expected is not bool:
            ok = False
        else:
            ok = isinstance(value, expected)
        if not ok:
            name = expected.__name__ if isinstance(expected, type) else "/".join(t.__name__ for t in expected)
            raise ConfigError(f"{where}: {label} {key}: expected {_human(name)}, "
                              f"got {_human(type(value).__name__)} {value!r}")


def _human(type_name: str) -> str:
    return {"str": "a string", "int": "an integer", "list": "a list", "dict": "a table",
            "bool": "true or false", "float": "a number"}.get(type_name, type_name)


def _unique(values: list[str], key: str, where: str) -> None:
    seen: set[str] = set()
    for v in values:
        if v in seen:
            raise ConfigError(f"{where}: [[partnership]] {key}: {v!r} is used twice")
        seen.add(v)


