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


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    # verify wants ExecStart to exist: point it at this environment's mailflow.
    exe = Path(sys.executable).with_name("mailflow")
    unit = tmp_path / "mailflow.service"
    unit.write_text(UNIT.read_text().replace("/opt/mailflow/bin/mailflow", str(exe)))
    verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stderr
    assert verify.stderr.strip() == ""
    security = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(unit)],
                              capture_output=True, text=True, timeout=60)
    level = re.search(r"Overall exposure level for \S+: ([\d.]+)", security.stdout)
    assert level is not None, security.stdout[-500:] + security.stderr
    assert float(level.group(1)) <= 2.0, security.stdout[-2000:]


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
