"""The keys of each `[partnership.mailbox]` and `[partnership.transport]` kind, as pydantic models.

The config checks these tables when it loads (an unknown key, a wrong type, an unknown `kind`,
`auth` or `tls` is one line naming the file and the key), and each source/transport's
`from_config` reads its table through the same model (`read_options`), so a table given in code
is checked the same way. A key left out is None here: the connector's own default applies, and
what a key needs besides (the address Graph reads, a secret that is set) is checked where the
connector is built, by `mailflow doctor` too. A new key is one line in its model.

Light on purpose: no connector library is imported to read a config.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar, get_args

from pydantic import AfterValidator, Discriminator, Field, Tag

from mailflow.validation import Table, validate

Positive = Annotated[int, Field(gt=0)]
Seconds = Annotated[float, Field(ge=0)]


class ConnectorOptions(Table):
    kind: str

    def given(self) -> dict[str, Any]:
        """The keys the table gave (with `kind`), for the code that reads them with its defaults."""
        return {"kind": self.kind, **self.model_dump(exclude_unset=True)}


class _Password(Table):
    username: str | None = None
    password_env: str | None = None      # the environment variable holding the password
    password_file: str | None = None     # or the file holding it


class _OAuth(Table):
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret_env: str | None = None
    client_secret_file: str | None = None
    authority_host: str | None = None    # default https://login.microsoftonline.com
    scope: str | None = None


class _Folders(Table):
    folder: str | None = None            # the watched folder (INBOX / Inbox)
    processed_folder: str | None = None  # default "Processed" (created if absent)
    quarantine_folder: str | None = None  # default "Quarantine"
    unrelated_folder: str | None = None  # default: unrelated mail stays where it is
    max_message_bytes: Positive | None = None


class MaildirOptions(ConnectorOptions):
    kind: Literal["maildir"]
    path: str | None = None              # default var/mail


class FileOptions(ConnectorOptions):
    kind: Literal["file"]
    path: str | None = None              # default var/outbox


class ImapOptions(ConnectorOptions, _Password, _OAuth, _Folders):
    kind: Literal["imap"]
    host: str | None = None
    port: Positive | None = None         # default 993 (implicit TLS) or 143
    auth: Literal["password", "xoauth2"] | None = None   # default password
    tls: Literal["implicit", "starttls", "none"] | None = None  # "none": loopback only
    ca_file: str | None = None           # a private CA
    batch_size: Positive | None = None
    timeout: Seconds | None = None
    idle: bool | None = None             # IDLE only wakes mailflow; a UID search reconciles on a timer
    poll_seconds: Seconds | None = None
    idle_renew_seconds: Seconds | None = None
    reconcile_seconds: Seconds | None = None
    backoff_initial: Seconds | None = None
    backoff_max: Seconds | None = None


class SmtpOptions(ConnectorOptions, _Password, _OAuth):
    kind: Literal["smtp"]
    host: str | None = None
    port: Positive | None = None         # default 465 (implicit TLS) or 587
    auth: Literal["password", "xoauth2", "none"] | None = None
    tls: Literal["implicit", "starttls", "none"] | None = None  # default starttls; "none": loopback only
    ca_file: str | None = None
    timeout: Seconds | None = None
    local_hostname: str | None = None


class _Exchange(_Password):
    mailbox: str | None = None           # the primary SMTP address
    auth: Literal["ntlm", "oauth2"] | None = None  # default ntlm
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret_env: str | None = None
    client_secret_file: str | None = None
    server: str | None = None            # or autodiscover = true
    autodiscover: bool | None = None


class EwsSourceOptions(ConnectorOptions, _Exchange, _Folders):
    kind: Literal["ews"]
    batch_size: Positive | None = None


class EwsTransportOptions(ConnectorOptions, _Exchange):
    kind: Literal["ews"]


class _Graph(_OAuth):
    mailbox: str | None = None           # the address Graph reads or sends as
    timeout: Seconds | None = None
    base_url: str | None = None
    max_retries: Annotated[int, Field(ge=0)] | None = None


class GraphSourceOptions(ConnectorOptions, _Graph, _Folders):
    kind: Literal["graph"]
    page_size: Positive | None = None


class GraphTransportOptions(ConnectorOptions, _Graph):
    kind: Literal["graph"]


SOURCE_OPTIONS: dict[str, type[ConnectorOptions]] = {
    "maildir": MaildirOptions, "imap": ImapOptions, "ews": EwsSourceOptions, "graph": GraphSourceOptions}
TRANSPORT_OPTIONS: dict[str, type[ConnectorOptions]] = {
    "file": FileOptions, "smtp": SmtpOptions, "ews": EwsTransportOptions, "graph": GraphTransportOptions}


def _kind_tag(value: Any) -> str | None:
    kind = value.get("kind") if isinstance(value, Mapping) else getattr(value, "kind", None)
    return f"kind={kind}" if isinstance(kind, str) else None


def _union(kinds: dict[str, type[ConnectorOptions]]) -> Any:
    members = tuple(Annotated[model, Tag(f"kind={kind}")] for kind, model in kinds.items())
    union: Any = members[0]
    for member in members[1:]:
        union = union | member
    return Annotated[union, Discriminator(
        _kind_tag, custom_error_type="unknown_kind",
        custom_error_message=f"'kind' must be one of {', '.join(kinds)}"), AfterValidator(_given)]


def _given(options: ConnectorOptions) -> dict[str, Any]:
    return options.given()


# A partnership's [partnership.mailbox] and [partnership.transport], checked by `kind` when the
# config loads, then kept as the keys the table gave (what `build_source` and doctor take).
SourceTable = _union(SOURCE_OPTIONS)
TransportTable = _union(TRANSPORT_OPTIONS)

OptionsT = TypeVar("OptionsT", bound=ConnectorOptions)


def read_options(model: type[OptionsT], options: Mapping[str, Any] | ConnectorOptions, where: str) -> dict[str, Any]:
    """The table checked against `model` (ConfigError naming `where` and the key), as the keys
    it gave."""
    if isinstance(options, ConnectorOptions):
        return options.given()
    kind = get_args(model.model_fields["kind"].annotation)[0]   # a table given in code may leave it out
    return validate(model, {"kind": kind, **options}, where, dotted=True).given()
