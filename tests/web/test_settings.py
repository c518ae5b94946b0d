"""The [web] config table: defaults, the OpenID Connect table, and refusals naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailflow.config import load_config
from mailflow.errors import ConfigError
from tests.conftest import write_config

OIDC = """
[web]
listen = "127.0.0.1:9090"
session_idle_minutes = 10
[web.oidc]
issuer = "https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/v2.0/"
client_id = "console"
client_secret_env = "MAILFLOW_OIDC_SECRET"
[web.oidc.groups]
"aaaaaaaa-0000-0000-0000-000000000001" = "team"
[web.oidc.addresses]
"chair@ssp.example.org" = "viewer"
"""


def _config(tmp_path: Path, web: str) -> Path:
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    path.write_text(path.read_text() + web)
    return path


def test_the_web_table_defaults_to_loopback_and_no_oidc(tmp_path: Path) -> None:
    web = load_config(str(write_config(tmp_path, "sqlite:///x.db"))).web
    assert web.listen == "127.0.0.1:8080" and web.oidc is None and web.secure_cookies == "auto"


def test_the_oidc_table_loads(tmp_path: Path) -> None:
    web = load_config(str(_config(tmp_path, OIDC))).web
    assert web.listen == "127.0.0.1:9090" and web.session_idle_minutes == 10
    assert web.oidc is not None
    assert web.oidc.issuer.endswith("/v2.0")
    assert web.oidc.groups == {"aaaaaaaa-0000-0000-0000-000000000001": "team"}
    assert web.oidc.addresses == {"chair@ssp.example.org": "viewer"}


@pytest.mark.parametrize(("change", "says"), [
    (('= "team"', '= "owner"'), "groups"),
    (("https://login", "http://login"), "https:// address"),
    (("client_id =", "clientid ="), "client_id"),
    (("session_idle_minutes = 10", 'session_idle_minutes = "10"'), "session_idle_minutes"),
])
def test_a_wrong_web_key_is_one_line_naming_it(tmp_path: Path, change: tuple[str, str], says: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(str(_config(tmp_path, OIDC.replace(*change))))
    assert says in str(err.value) and "\n" not in str(err.value)
