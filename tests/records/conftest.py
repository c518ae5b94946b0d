"""Records tests (Board report, quarantine review, retention, export, audit) drive the engine's
harness: real ingest of invented people's forms and replies, the clock frozen and moved."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine.conftest import Harness, open_harness


@pytest.fixture
def h_any(tmp_path: Path, db_url: str) -> Iterator[Harness]:
    """Swindon on SQLite and on PostgreSQL."""
    harness = open_harness(tmp_path, db_url)
    yield harness
    harness.app.close()


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    """Swindon on SQLite."""
    harness = open_harness(tmp_path, f"sqlite:///{tmp_path / 'records.db'}")
    yield harness
    harness.app.close()
