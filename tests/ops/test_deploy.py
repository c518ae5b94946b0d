"""The deployment files stay true: systemd accepts the unit (with the hardening the README promises),
and the Containerfile copies everything the wheel is built from."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "mailflow.service"


def test_the_unit_is_hardened_and_notifies() -> None:
    settings = dict(re.findall(r"^(\w+)=(.*)$", UNIT.read_text(), flags=re.M))
    assert settings["Type"] == "notify" and settings["WatchdogSec"]
    assert settings["User"] == "mailflow" and settings["StateDirectory"] == "mailflow"
    for key in ("ProtectSystem", "PrivateTmp", "NoNewPrivileges"):
        assert settings[key] in ("strict", "yes"), key
    assert settings["ExecStart"].endswith("mailflow run")
    sysusers = (ROOT / "deploy" / "mailflow.sysusers").read_text()
    assert re.search(r"^u mailflow ", sysusers, flags=re.M)


@pytest.mark.parametrize("name", ["mailflow.service", "mailflow-purge.service"])
def test_systemd_accepts_the_unit(tmp_path: Path, name: str) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    unit = _installed(tmp_path, name)
    verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stderr
    assert verify.stderr.strip() == ""
    security = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(unit)],
                              capture_output=True, text=True, timeout=60)
    level = re.search(r"Overall exposure level for \S+: ([\d.]+)", security.stdout)
    assert level is not None, security.stdout[-500:] + security.stderr
    assert float(level.group(1)) <= 2.0, security.stdout[-2000:]


def test_the_purge_timer_runs_the_purge_monthly_and_catches_up(tmp_path: Path) -> None:
    timer = ROOT / "deploy" / "mailflow-purge.timer"
    settings = dict(re.findall(r"^(\w+)=(.*)$", timer.read_text(), flags=re.M))
    assert settings["OnCalendar"] == "monthly" and settings["Persistent"] == "true"
    service = dict(re.findall(r"^(\w+)=(.*)$", (ROOT / "deploy" / "mailflow-purge.service").read_text(), flags=re.M))
    assert service["Type"] == "oneshot" and re.search(r"mailflow purge( |$)", service["ExecStart"])
    assert service["User"] == "mailflow" and service["Environment"] == dict(
        re.findall(r"^(\w+)=(.*)$", UNIT.read_text(), flags=re.M))["Environment"]
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    _installed(tmp_path, "mailflow-purge.service")
    copy = tmp_path / timer.name
    copy.write_text(timer.read_text())
    verify = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0 and verify.stderr.strip() == "", verify.stderr


def _installed(directory: Path, name: str) -> Path:
    """The unit as installed here: verify wants ExecStart to exist, so it points at this
    environment's mailflow."""
    exe = Path(sys.executable).with_name("mailflow")
    unit = directory / name
    unit.write_text((ROOT / "deploy" / name).read_text().replace("/opt/mailflow/bin/mailflow", str(exe)))
    return unit


def test_the_containerfile_copies_what_the_wheel_is_built_from() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wheel = project["tool"]["hatch"]["build"]["targets"]["wheel"]
    needed = {*wheel["packages"], *wheel.get("force-include", {}), "pyproject.toml", project["project"]["readme"]}
    text = (ROOT / "Containerfile").read_text()
    copied = {name for line in re.findall(r"^COPY (?!--from)(.*)$", text, flags=re.M) for name in line.split()[:-1]}
    assert needed <= copied, needed - copied
    assert re.search(r"^USER mailflow$", text, flags=re.M)
    assert "/healthz" in text and re.search(r"^HEALTHCHECK ", text, flags=re.M)
    assert "'.[postgres]'" in text
