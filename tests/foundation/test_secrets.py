"""Secrets fail closed (issue 11 item 7): the reply-token key is refused at start-up when unset,
empty or short; var/secret.key is made once, atomically, owner-only, even by racing workers."""

from __future__ import annotations

import multiprocessing
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from mailflow.app import App
from mailflow.clock import SystemClock
from mailflow.config import load_config
from mailflow.errors import ConfigError
from mailflow.private_files import create_private_once
from mailflow.secret_key import MIN_SECRET_CHARS, load_secret_key
from tests.conftest import write_config

GOOD = "k" * MIN_SECRET_CHARS


def _config(tmp_path: Path, extra: str = "") -> Path:
    return write_config(tmp_path, f"sqlite:///{tmp_path / 'mailflow.db'}", extra=extra)


@pytest.mark.parametrize(("value", "says"), [
    (None, "environment variable MAILFLOW_TEST_KEY is not set"),
    ("", "is empty"),
    ("   ", "is empty"),
    ("short-key", "is 9 characters: the reply-token key must be at least 32"),
    ("k" * (MIN_SECRET_CHARS - 1), "at least 32"),
])
def test_secret_env_unset_empty_or_short_is_refused_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             value: str | None, says: str) -> None:
    path = _config(tmp_path, 'secret_env = "MAILFLOW_TEST_KEY"')
    if value is None:
        monkeypatch.delenv("MAILFLOW_TEST_KEY", raising=False)
    else:
        monkeypatch.setenv("MAILFLOW_TEST_KEY", value)
    with pytest.raises(ConfigError) as err:
        App.open(load_config(str(path)), SystemClock())
    assert says in str(err.value) and str(path) in str(err.value) and "secret_env" in str(err.value)
    assert not (tmp_path / "mailflow.db").exists()  # refused before anything was opened


def test_a_long_enough_env_secret_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILFLOW_TEST_KEY", GOOD)
    app = App.open(load_config(str(_config(tmp_path, 'secret_env = "MAILFLOW_TEST_KEY"'))), SystemClock())
    try:
        assert app.secret_key == GOOD.encode()
    finally:
        app.close()


def test_short_secret_file_is_refused_and_the_command_says_so_in_one_line(tmp_path: Path) -> None:
    key = tmp_path / "token.key"
    key.write_text("abc\n")
    path = _config(tmp_path, f'secret_file = "{key}"')
    with pytest.raises(ConfigError, match="secret_file: .*token.key is 3 characters"):
        load_secret_key(load_config(str(path)))
    result = subprocess.run([sys.executable, "-m", "mailflow", "--config", str(path), "cases", "list"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "at least 32" in result.stderr


def test_default_key_is_created_owner_only_and_reused(tmp_path: Path) -> None:
    cfg = load_config(str(_config(tmp_path)))
    old = os.umask(0o000)
    try:
        first = load_secret_key(cfg)
    finally:
        os.umask(old)
    key_file = tmp_path / "var" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert len(first) == 64 and int(first, 16) >= 0
    assert load_secret_key(cfg) == first
    assert sorted(p.name for p in key_file.parent.iterdir()) == ["secret.key"]  # no temporary left


def test_create_private_once_never_replaces(tmp_path: Path) -> None:
    target = tmp_path / "k"
    assert create_private_once(target, b"first") is True
    assert create_private_once(target, b"second") is False
    assert target.read_bytes() == b"first" and sorted(os.listdir(tmp_path)) == ["k"]


def _race(config_path: str, start: multiprocessing.synchronize.Barrier, out: multiprocessing.Queue) -> None:
    cfg = load_config(config_path)
    start.wait()
    out.put(load_secret_key(cfg))


def test_workers_starting_together_end_up_with_one_key(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    path = str(_config(tmp_path))
    workers = 6
    barrier, out = ctx.Barrier(workers), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(path, barrier, out)) for _ in range(workers)]
    for p in procs:
        p.start()
    keys = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    on_disk = (tmp_path / "var" / "secret.key").read_bytes().strip()
    assert set(keys) == {on_disk} and len(on_disk) == 64
    assert sorted(p.name for p in (tmp_path / "var").iterdir()) == ["secret.key"]
