"""Configuration: a TOML file (or the embedded default), validated into typed settings.

Lookup order: --config PATH, $MAILFLOW_CONFIG, ./mailflow.toml, else the embedded default
(SQLite and a Maildir under ./var, the file transport, one partnership on the Swindon policy).
Every key is checked when the file loads (mailflow/validation.py): an unknown key, a wrong type, a
bad schedule is one line naming the file, the key and what is wrong, so `mailflow doctor` finds
whatever `mailflow run` would trip on.

A new setting is one line: a field with its default and a comment in the table's class below (and
the same line in config.example.toml). A new table is a `Table` class and one field of `Config`.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, cast, get_type_hints

from pydantic import (
    AfterValidator,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    create_model,
    model_validator,
)

from mailflow.clock import Clock
from mailflow.connector_options import SourceTable, TransportTable
from mailflow.connectors import ConnectorEnv, SyncStateStore
from mailflow.core.policy import load_policies
from mailflow.cron import Cron, cron_schedule
from mailflow.errors import ConfigError
from mailflow.resources import bundled_dir
from mailflow.validation import Array, RelativePath, Table, config_error, located_error
from parsers import ParseLimits as Limits  # [limits] in the config are the parser's limits

EMBEDDED = "<embedded default>"
_PREFIX = re.compile(r"^[A-Z][A-Z0-9]{1,9}$")
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


def _readable_dir(path: Path) -> Path:
    if not path.is_dir():
        raise ValueError(f"{path} is not a readable directory")
    return path


def _readable_file(path: Path) -> Path:
    if not path.is_file():
        raise ValueError(f"{path} is not a readable file")
    return path


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError(f"{value!r} is not an email address")
    return value


def _prefix(value: str) -> str:
    if not _PREFIX.match(value):
        raise ValueError(f"{value!r} must be 2-10 capitals/digits, starting with a letter (e.g. SSP)")
    return value


def _at_least_one(partnerships: tuple[Any, ...]) -> tuple[Any, ...]:
    if not partnerships:
        raise ValueError("at least one partnership is required")
    return partnerships


ReadableDir = Annotated[RelativePath, AfterValidator(_readable_dir)]
ReadableFile = Annotated[RelativePath, AfterValidator(_readable_file)]
Email = Annotated[str, AfterValidator(_email)]


class MailflowSettings(Table):
    """[mailflow]"""

    database_url: str | None = None     # default: SQLite in var_dir
    var_dir: RelativePath = Field(default=Path("var"), validate_default=True)  # SQLite, Maildir, token key
    policies_dir: ReadableDir | None = None    # extra policy files; one named like a bundled one replaces it
    templates_dir: ReadableDir | None = None   # email template overrides for every partnership
    secret_env: str | None = None       # the environment variable holding the reply-token key
    secret_file: RelativePath | None = None    # or the file holding it
    message_id_domain: str = "mailflow.invalid"   # right-hand side of the Message-IDs mailflow sends


class DaemonSettings(Table):
    """[daemon]"""

    poll_seconds: int = 60          # reconcile the mailbox at least this often (IDLE wakes sooner)
    sweep_seconds: int = 60         # look for due deadlines this often
    digest_cron: Cron = cron_schedule("mon-fri 08:00")  # the business-team digest (UK time; crontab too)
    outbox_max_attempts: int = 8
    mailbox_stale_minutes: float = 30  # watchdog and /healthz: mailbox not read successfully for this long
    outbox_stale_minutes: float = 30   # watchdog and /healthz: an unsent message older than this
    sender_messages_per_hour: int = 20  # more from one sender is a loop or a flood: not acted on
    reply_token_days: int = 60      # a reply token acts for this many days after the mail that carried it


class LoggingSettings(Table):
    """[logging]"""

    format: Literal["text", "json"] = "text"   # stderr: text lines, or one JSON object a line (log shipping)


def _listen(value: str | None) -> str | None:
    if value:
        from mailflow.status_server import parse_listen

        try:
            parse_listen(value)
        except ConfigError as exc:
            raise ValueError(str(exc).partition(": ")[2]) from None
    return value


class StatusSettings(Table):
    """[status]"""

    # `mailflow run` serves /healthz and /metrics here ("127.0.0.1:9187"; a bare port is loopback);
    # off when unset. Several workers on one host need a port each.
    listen: Annotated[str | None, AfterValidator(_listen)] = None


# [limits]: the parser's own limits (parsers/model.py), every one a key with its default there.
_LIMIT_TYPES = get_type_hints(Limits)
LimitsSettings = create_model(  # type: ignore[call-overload]
    "LimitsSettings", __base__=Table, __doc__="[limits]",
    **{name: (_LIMIT_TYPES[name], default) for name, default in vars(Limits()).items()})


class Partnership(Table):
    """[[partnership]]"""

    name: str
    prefix: Annotated[str, AfterValidator(_prefix)]     # case references: SSP-2026-0001
    policy: str                      # a policy file's name (mailflow policy list)
    address: Email                   # the watched mailbox; mail is sent from it
    business_team: Array[Email]
    mailbox: SourceTable             # [partnership.mailbox]: kind and the source's keys (connector_options.py)
    transport: TransportTable        # [partnership.transport]: kind and the transport's keys
    directory: ReadableFile | None = None    # agencies and their contacts per tier
    subject_prefix: str = ""         # e.g. "[secure]"
    templates_dir: ReadableDir | None = None  # this partnership's template overrides
    # The case's details and the original form go with escalations, business copies and final
    # alerts; off for a partnership whose transport is not a secure route.
    send_form_with_escalations: bool = True
    # UK GDPR storage limitation: `mailflow purge` removes a case, its messages, notices and
    # audit content this many whole years after it closed or was withdrawn (counts are kept).
    retention_years_after_closure: Annotated[int, Field(ge=1, le=100)] = 8
    # The digest's CSV (Appendix 1 log) carries the adult's name, date of birth and identifier;
    # off by default: the digest is read widely and goes by ordinary mail.
    digest_personal_data: bool = False


ConsoleRole = Literal["viewer", "team", "admin"]


def _issuer(value: str) -> str:
    host = value.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
    if not value.startswith("https://") and not (value.startswith("http://") and host in ("localhost", "127.0.0.1")):
        raise ValueError(f"{value!r}: an OpenID Connect issuer is an https:// address")
    return value.rstrip("/")


class OidcSettings(Table):
    """[web.oidc]: sign-in with the partnership's Microsoft Entra ID tenant (any OpenID Connect issuer)."""

    issuer: Annotated[str, AfterValidator(_issuer)]   # https://login.microsoftonline.com/<tenant id>/v2.0
    client_id: str                   # the app registration's Application (client) ID
    client_secret_env: str           # the environment variable holding its client secret
    groups: dict[str, ConsoleRole] = {}      # Entra group object id -> role (the ID token's groups claim)
    addresses: dict[str, ConsoleRole] = {}   # or an address -> role; nobody else signs in
    redirect_uri: str | None = None  # default: the console's own /auth/callback as the browser reached it
    scopes: str = "openid profile email"
    label: str = "Sign in with Microsoft 365"


class WebSettings(Table):
    """[web]: the business team's console (`mailflow web`)."""

    listen: str = "127.0.0.1:8080"   # loopback unless told otherwise
    session_idle_minutes: int = 30   # a session unused this long ends
    # Secure cookies: "auto" marks them Secure unless the console is reached over plain http on a
    # loopback address (the demo, the tests); any other address then needs https (directly, or a
    # proxy on this machine setting X-Forwarded-Proto). "true" / "false" force it.
    secure_cookies: Literal["auto", "true", "false"] = "auto"
    login_failures_per_account: int = 5    # failed sign-ins within login_window_minutes, then refused
    login_failures_per_client: int = 30    # from one client address (one office behind one address)
    login_window_minutes: int = 15
    case_page_size: int = 50
    # The names the console answers to (the Host header; a guard against DNS rebinding, where a
    # web page elsewhere gets a browser to talk to the console by a name of its own). Empty: the
    # loopback names when it listens on loopback; listening elsewhere, it must be set.
    allowed_hosts: Array[str] = ()
    oidc: OidcSettings | None = None


class Config(Table):
    """The whole file."""

    # Defaults are validated too, so that their relative paths are relative to the file's folder.
    mailflow: MailflowSettings = Field(default={}, validate_default=True)
    daemon: DaemonSettings = DaemonSettings()
    web: WebSettings = WebSettings()
    logging: LoggingSettings = LoggingSettings()
    status: StatusSettings = StatusSettings()
    limits_table: LimitsSettings = Field(default_factory=LimitsSettings, alias="limits")  # type: ignore[valid-type]
    partnerships: Annotated[Array[Partnership], AfterValidator(_at_least_one)] = Field(alias="partnership")
    _path: Path | None = PrivateAttr(default=None)
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @model_validator(mode="after")
    def _where_it_came_from(self, info: ValidationInfo) -> Config:
        context = info.context or {}
        self._path = context.get("path")
        self._base_dir = context.get("base_dir", self._base_dir)
        return self

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def base_dir(self) -> Path:
        return self._base_dir

    @property
    def var_dir(self) -> Path:
        return self.mailflow.var_dir

    @property
    def database_url(self) -> str:
        return self.mailflow.database_url or f"sqlite:///{self.var_dir / 'mailflow.db'}"

    @property
    def policies_dir(self) -> Path | None:
        return self.mailflow.policies_dir

    @property
    def templates_dir(self) -> Path | None:
        return self.mailflow.templates_dir

    @property
    def secret_env(self) -> str | None:
        return self.mailflow.secret_env

    @property
    def secret_file(self) -> Path | None:
        return self.mailflow.secret_file

    @property
    def message_id_domain(self) -> str:
        return self.mailflow.message_id_domain

    @cached_property
    def limits(self) -> Limits:
        return Limits(**cast(Table, self.limits_table).model_dump())

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


def parse_config(data: Mapping[str, Any], path: Path | None, base_dir: Path | None = None) -> Config:
    where = str(path) if path else EMBEDDED
    base = (base_dir or (path.parent if path else Path.cwd())).resolve()
    if "partnership" not in data:
        raise ConfigError(f"{where}: [[partnership]]: at least one partnership is required")
    try:
        config = Config.model_validate(data, context={"base_dir": base, "path": path})
    except ValidationError as exc:
        raise config_error(where, exc) from None
    _unique([p.prefix for p in config.partnerships], "prefix", where)
    _unique([p.name for p in config.partnerships], "name", where)
    _check_policies_exist(config, where)
    _check_directories(config)
    return config


def _check_policies_exist(config: Config, where: str) -> None:
    """Every policy file is read now (a broken one is an error naming it), so that doctor refuses
    what run would; each partnership's policy must be one of them."""
    known = load_policies(config.policy_dirs)
    for index, p in enumerate(config.partnerships):
        if p.policy not in known:
            raise located_error(where, ("partnership", index, "policy"),
                                f"{p.policy!r} is not a known policy (known: {', '.join(sorted(known)) or 'none'})")


def _check_directories(config: Config) -> None:
    """Each partnership's directory file is read now: an error names that file and its key."""
    from mailflow.directory import Directory

    for p in config.partnerships:
        if p.directory is not None:
            Directory.load(p.directory, p.business_team)


def _unique(values: list[str], key: str, where: str) -> None:
    seen: set[str] = set()
    for v in values:
        if v in seen:
            raise ConfigError(f"{where}: [[partnership]] {key}: {v!r} is used twice")
        seen.add(v)
