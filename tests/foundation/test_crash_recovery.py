"""A crash at the worst moment, for real: the process dies after the commit and before the
message leaves new/. The re-run recognises it and settles it: one case, one acknowledgement."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from mailflow.sources.maildir import MaildirSource
from tests.conftest import make_form, write_config

KILL_AFTER_COMMIT = textwrap.dedent("""\
    import os, sys
    from mailflow.sources.maildir import MaildirSource
    def die(self, mail, outcome, reason=None):
        os._exit(137)   # killed between the database commit and the move
    MaildirSource.settle = die
    from mailflow.cli.main import main
    sys.exit(main(sys.argv[1:]))
    """)


def _run(config: Path, script: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", script, *args] if script else [sys.executable, "-m", "mailflow", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=config.parent,
                          env={**os.environ, "MAILFLOW_CONFIG": str(config)})


def test_killed_between_commit_and_move_leaves_one_case(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path, db_url)
    MaildirSource(tmp_path / "mail").deliver(make_form(), "1.eml")

    crashed = _run(config, KILL_AFTER_COMMIT, "run", "--once", "--at", "2026-12-21T10:05")
    assert crashed.returncode == 137
    assert len(list((tmp_path / "mail" / "new").iterdir())) == 1  # still in the watched folder

    rerun = _run(config, None, "run", "--once", "--at", "2026-12-21T10:06")
    assert rerun.returncode == 0, rerun.stderr
    cases = json.loads(_run(config, None, "cases", "list", "--format", "json").stdout)
    assert len(cases) == 1
    assert not list((tmp_path / "mail" / "new").iterdir())
    acks = [p for p in (tmp_path / "outbox").glob("*.eml") if b"escalation received" in p.read_bytes()]
    assert len(acks) == 1
