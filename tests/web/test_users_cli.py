"""`mailflow users add|remove|list`: a one-time password printed once (or read from stdin), only
its argon2 hash kept, no account twice, removal ends the account."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import select

from mailflow.app import App
from mailflow.cli.main import main
from mailflow.clock import FixedClock
from mailflow.db.models import Event, WebUser
from mailflow.web.accounts import check_password
from tests.conftest import make_config


def _cli(capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--config", str(tmp_path / "mailflow.toml"), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_users_add_prints_a_one_time_password_and_keeps_only_its_hash(
        tmp_path: Path, db_url: str, clock: FixedClock, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    app = App.open(make_config(tmp_path, db_url), clock)
    try:
        code, out, _ = _cli(capsys, tmp_path, "users", "add", "Jo.Officer@ssp.example.org", "--role", "team")
        assert code == 0 and "jo.officer@ssp.example.org: team account added" in out
        password = out.split("one-time password (shown once, not stored): ")[1].strip()
        assert len(password) >= 16
        with app.db.transaction() as s:
            user = s.scalars(select(WebUser)).one()
            assert user.password_hash is not None and user.password_hash.startswith("$argon2id$")
            assert password not in user.password_hash
            assert check_password(s, "jo.officer@ssp.example.org", password) is not None
            assert check_password(s, "jo.officer@ssp.example.org", password + "x") is None
            assert [e.action for e in s.scalars(select(Event))] == ["user_added"]

        code, _, err = _cli(capsys, tmp_path, "users", "add", "jo.officer@ssp.example.org", "--role", "admin")
        assert code == 2 and "already has an account" in err
        code, _, err = _cli(capsys, tmp_path, "users", "add", "someone@ssp.example.org", "--role", "owner")
        assert code == 2

        monkeypatch.setattr("sys.stdin", io.StringIO("a chosen passphrase of length\n"))
        code, out, _ = _cli(capsys, tmp_path, "users", "add", "val@ssp.example.org", "--role", "viewer",
                            "--password-stdin")
        assert code == 0 and "one-time password" not in out
        monkeypatch.setattr("sys.stdin", io.StringIO("too short\n"))
        code, _, err = _cli(capsys, tmp_path, "users", "add", "short@ssp.example.org", "--role", "viewer",
                            "--password-stdin")
        assert code == 2 and "12 to 1024 characters" in err

        code, out, _ = _cli(capsys, tmp_path, "users", "remove", "jo.officer@ssp.example.org")
        assert code == 0
        code, out, _ = _cli(capsys, tmp_path, "users", "list")
        assert "jo.officer@ssp.example.org" in out and "(removed)" in out and "val@ssp.example.org" in out
        with app.db.transaction() as s:
            assert check_password(s, "jo.officer@ssp.example.org", password) is None
    finally:
        app.close()
