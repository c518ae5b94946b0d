"""Schedules are read when the config loads (issue 13 item 1): crontab ("0 8 * * 1-5") and the
short form ("mon-fri 08:00") give the same trigger; a bad one is one config line naming the key, the
same from `doctor` as from `run --once`, and the daemon schedules the trigger the config built."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mailflow.config import load_config
from mailflow.cron import cron_schedule
from mailflow.errors import ConfigError
from tests.conftest import write_config

LONDON = ZoneInfo("Europe/London")
SATURDAY = datetime(2026, 12, 5, 9, 0, tzinfo=LONDON)


def _config_with_cron(tmp_path: Path, cron: str) -> Path:
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    text = path.read_text()
    at = text.index("[[partnership]]")
    path.write_text(text[:at] + f'[daemon]\ndigest_cron = "{cron}"\n\n' + text[at:])
    return path


def _next_fires(cron: str, after: datetime, count: int = 6) -> list[datetime]:
    trigger = cron_schedule(cron).trigger
    fires, previous, now = [], None, after
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now)
        fires.append(fire)
        previous, now = fire, fire
    return fires


@pytest.mark.parametrize("cron", ["0 8 * * 1-5", "mon-fri 08:00", "0 8 * * mon-fri", "0 8 * * 1,2,3,4,5"])
def test_crontab_and_the_short_form_mean_weekdays_at_eight(cron: str) -> None:
    fires = _next_fires(cron, SATURDAY)
    # Monday 7 to Friday 11 December, then Monday 14: no weekend (APScheduler 3's from_crontab alone
    # would read "1-5" as Tuesday to Saturday).
    assert [f.day for f in fires] == [7, 8, 9, 10, 11, 14]
    assert {(f.hour, f.minute) for f in fires} == {(8, 0)}
    assert fires[0].utcoffset() == LONDON.utcoffset(datetime(2026, 12, 7))


def test_crontab_sunday_is_0_or_7() -> None:
    assert [f.weekday() for f in _next_fires("30 9 * * 0", SATURDAY, 2)] == [6, 6]
    assert [f.weekday() for f in _next_fires("30 9 * * 7", SATURDAY, 2)] == [6, 6]
    assert [f.weekday() for f in _next_fires("30 9 * * */2", SATURDAY, 4)] == [5, 6, 1, 3]   # Sat Sun Tue Thu


def test_the_loaded_config_holds_the_trigger_the_daemon_schedules(tmp_path: Path) -> None:
    from mailflow.app import App
    from mailflow.clock import SystemClock
    from mailflow.daemon import Daemon

    config = load_config(str(_config_with_cron(tmp_path, "15 7 * * 1-5")))
    assert str(config.daemon.digest_cron) == "15 7 * * 1-5"
    app = App.open(config, SystemClock())
    try:
        daemon = Daemon(app)
        daemon.start()
        try:
            assert daemon.scheduler.get_job("digest").trigger is config.daemon.digest_cron.trigger
        finally:
            daemon.stop()
            daemon.scheduler.shutdown(wait=False)
            for reader in daemon.readers:
                reader.join(timeout=30)
    finally:
        app.close()


@pytest.mark.parametrize(("cron", "says"), [
    ("0 25 * * 1-5", "'0 25 * * 1-5' is not a schedule: "),
    ("0 8 * * 1-9", "weekday '1-9' is not within 0-7"),
    ("every morning", "expected crontab 'MIN HOUR DAY MONTH WEEKDAY'"),
    ("mon-fri 8:75", "'mon-fri 8:75' is not a schedule"),
    ("funday 08:00", "'funday 08:00' is not a schedule"),
])
def test_a_bad_schedule_is_a_config_error_naming_the_key(tmp_path: Path, cron: str, says: str) -> None:
    path = _config_with_cron(tmp_path, cron)
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    message = str(err.value)
    assert message.startswith(f"{path}: [daemon] digest_cron: ") and says in message and "\n" not in message


def test_doctor_and_run_reject_a_bad_schedule_with_the_same_line(tmp_path: Path) -> None:
    path = _config_with_cron(tmp_path, "0 8 * * 1-9")
    results = [subprocess.run([sys.executable, "-m", "mailflow", "--config", str(path), *command],
                              capture_output=True, text=True, timeout=120)
               for command in (["doctor"], ["run", "--once"])]
    doctor, run = results
    assert doctor.returncode == run.returncode == 2
    assert doctor.stderr == run.stderr
    (line,) = doctor.stderr.splitlines()
    assert line.startswith(f"mailflow: {path}: [daemon] digest_cron: '0 8 * * 1-9' is not a schedule")
    assert not (tmp_path / "db.sqlite").exists()   # refused before anything was opened
