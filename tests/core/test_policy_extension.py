"""`max_extension_days`: how far `#extend` may move a stage's deadlines, set per policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailflow.core.policy import load_policy
from mailflow.errors import PolicyError
from mailflow.resources import bundled_dir


def _variant(tmp_path: Path, line: str) -> Path:
    text = (bundled_dir("policies") / "swindon.toml").read_text()
    old = next(ln for ln in text.splitlines() if ln.startswith("max_extension_days"))
    path = tmp_path / "variant.toml"
    path.write_text(text.replace(old, line))
    return path


def test_bundled_policies_mark_the_local_default() -> None:
    for f in bundled_dir("policies").glob("*.toml"):
        assert load_policy(f).max_extension_days == 5
        assert "max_extension_days = 5  # local default" in f.read_text()


def test_a_policy_can_set_its_own_limit(tmp_path: Path) -> None:
    assert load_policy(_variant(tmp_path, "max_extension_days = 2")).max_extension_days == 2
    with pytest.raises(PolicyError, match="max_extension_days"):
        load_policy(_variant(tmp_path, 'max_extension_days = "lots"'))
