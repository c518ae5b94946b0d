"""TLS for the connectors that speak it themselves (IMAP, SMTP): the `tls` mode and the context."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Mapping
from typing import Any

from mailflow.connectors import ConnectorEnv
from mailflow.errors import ConfigError

TLS_MODES = ("implicit", "starttls", "none")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_tls_mode(options: Mapping[str, Any], host: str, where: str, default: str) -> str:
    """`tls` must be implicit/starttls; "none" only towards a loopback address."""
    mode = str(options.get("tls", default))
    if mode not in TLS_MODES:
        raise ConfigError(f"{where}: tls: {mode!r} is not one of {', '.join(TLS_MODES)}")
    if mode == "none" and not is_loopback(host):
        raise ConfigError(f"{where}: tls: \"none\" is allowed only to a loopback address "
                          f"(127.0.0.1, ::1, localhost), not {host!r}")
    return mode


def ssl_context_from_options(options: Mapping[str, Any], env: ConnectorEnv) -> ssl.SSLContext:
    """Verifying context; `ca_file` adds a private CA (an on-premises Exchange, a test cert)."""
    ca_file = options.get("ca_file")
    return ssl.create_default_context(cafile=str(env.path(str(ca_file))) if ca_file else None)
