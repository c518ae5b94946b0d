"""Output to a closed pipe (`mailflow cases list | head -1`) ends quietly: exit 141 (as for
SIGPIPE), nothing on stderr, no traceback (issue 10 item 7)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mailflow.cli.main import EXIT_BROKEN_PIPE
from tests.conftest import make_form, write_config


def _with_reader_gone(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run mailflow with its stdout a pipe whose reader has already gone."""
    proc = subprocess.Popen([sys.executable, "-m", "mailflow", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the child has written anything: its first write fails
    err = proc.stderr.read()
    return proc.wait(timeout=120), err


def test_policy_timeline_into_a_closed_pipe(tmp_path: Path) -> None:
    code, err = _with_reader_gone(["policy", "timeline", "swindon", "--start", "2026-12-21T10:00"], tmp_path)
    assert (code, err) == (EXIT_BROKEN_PIPE, "")


def test_cases_list_into_a_closed_pipe(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'mailflow.db'}")
    form = tmp_path / "form.eml"
    form.write_bytes(make_form())
    ingest = subprocess.run([sys.executable, "-m", "mailflow", "--config", str(config), "ingest", str(form),
                             "--at", "2026-12-21T10:00"], capture_output=True, text=True, timeout=120)
    assert ingest.returncode == 0, ingest.stderr
    code, err = _with_reader_gone(["--config", str(config), "cases", "list"], tmp_path)
    assert (code, err) == (EXIT_BROKEN_PIPE, "")


@pytest.mark.parametrize("command", ["policy timeline swindon --start 2026-12-21T10:00", "policy list"])
def test_shell_pipe_into_head_is_quiet(tmp_path: Path, command: str) -> None:
    result = subprocess.run(f"{sys.executable} -m mailflow {command} | head -1", shell=True,
                            capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0 and result.stderr == "" and len(result.stdout.splitlines()) == 1
