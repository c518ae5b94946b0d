"""Bad configuration gets one clear line naming the file, the key and the problem: exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mailflow.cli.main import main
from mailflow.config import embedded_default, load_config
from mailflow.errors import ConfigError
from tests.conftest import write_config


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mailflow", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda t: t.replace('prefix = "SSP"', 'prefix = "SSP"\ncolour = "blue"'), "unknown key 'colour'"),
    (lambda t: t.replace('prefix = "SSP"', "prefix = 42"), "prefix: expected a string, got an integer 42"),
    (lambda t: t.replace('policy = "swindon"', 'policy = "atlantis"'), "policy: 'atlantis' is not a known policy"),
    (lambda t: t.replace('prefix = "SSP"', 'prefix = "ssp"'), "must be 2-10 capitals"),
    (lambda t: t.replace('business_team = ["business.team@ssp.example.org"]', 'business_team = ["nobody"]'),
     "'nobody' is not an email address"),
    (lambda t: t.replace('[mailflow]', '[mailflow]\npolicies_dir = "/nonexistent/policies"'),
     "policies_dir: /nonexistent/policies is not a readable directory"),
    (lambda t: t + '\n[daemon]\npoll_seconds = "often"\n', "[daemon] poll_seconds: expected an integer"),
    (lambda t: t.replace('kind = "maildir"', ''), "mailbox: 'kind' must be one of maildir, imap, ews, graph, got none"),
    (lambda t: t + '\n[daemon]\nsweep_seconds = true\n',
     "[daemon] sweep_seconds: expected an integer, got a boolean True"),
    (lambda t: t + '\n[limits]\nparse_timeout_seconds = "long"\n',
     "[limits] parse_timeout_seconds: expected a number, got a string 'long'"),
    (lambda t: t.replace('business_team = ["business.team@ssp.example.org"]', 'business_team = "b@ssp.example.org"'),
     "[[partnership]] #1 business_team: expected a list, got a string 'b@ssp.example.org'"),
    (lambda t: t.replace('[mailflow]', 'mailflow = 3\n[daemon]'), "[mailflow]: expected a table, got an integer 3"),
    (lambda t: t + "\n[[[broken", "not valid TOML"),
])
def test_bad_config_names_file_key_and_problem(tmp_path: Path, mutate, expected: str) -> None:
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    path.write_text(mutate(path.read_text()))
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_bad_config_on_the_command_line_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    path.write_text(path.read_text().replace('policy = "swindon"', 'policy = "atlantis"'))
    result = _cli("--config", str(path), "cases", "list")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mailflow: ") and "atlantis" in lines[0]
    assert "Traceback" not in result.stderr


def test_missing_config_file_is_exit_2(tmp_path: Path) -> None:
    assert main(["--config", str(tmp_path / "nope.toml"), "cases", "list"]) == 2


def test_usage_error_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cases", "frobnicate"]) == 2


def test_secret_in_the_file_is_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    smtp = 'kind = "smtp"\nhost = "127.0.0.1"\npassword = "hunter2"'
    path.write_text(path.read_text().replace('kind = "file"', smtp))
    with pytest.raises(ConfigError) as err:   # when the config loads, not when the transport is built
        load_config(str(path))
    assert str(err.value) == (f"{path}: [[partnership]] #1 transport: 'password' must not be in the file; "
                              "use 'password_env' or 'password_file'")
    assert "hunter2" not in str(err.value)


def test_config_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAILFLOW_CONFIG", raising=False)
    assert load_config(None).path is None  # the embedded default
    local = write_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert load_config(None).path == Path("mailflow.toml") and local.exists()
    other = tmp_path / "other"
    other.mkdir()
    env_path = write_config(other, f"sqlite:///{other / 'db.sqlite'}")
    monkeypatch.setenv("MAILFLOW_CONFIG", str(env_path))
    assert load_config(None).path == env_path
    assert load_config(str(local)).path == local  # --config wins


def test_embedded_default_is_swindon_on_maildir_and_file(tmp_path: Path) -> None:
    cfg = embedded_default(tmp_path)
    p = cfg.partnership()
    assert p.policy == "swindon" and p.prefix == "SSP"
    assert p.mailbox["kind"] == "maildir" and p.transport["kind"] == "file"
    assert cfg.database_url == f"sqlite:///{tmp_path / 'var' / 'mailflow.db'}"
    assert p.directory is not None and "EXAMPLE" in p.directory.read_text()


def test_config_example_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    example = Path(__file__).resolve().parents[2] / "config.example.toml"
    monkeypatch.setenv("MAILFLOW_SECRET", "x")
    cfg = load_config(str(example))
    assert {p.prefix for p in cfg.partnerships} >= {"SSP"}
