"""The package layout the README describes: which modules may import which (read from the source)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imports_of(package: str) -> dict[str, set[str]]:
    """Every module under `package` (a path like "mailflow/sources") and the modules it imports,
    at the top or inside functions alike."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


def offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return [f"{module} imports {name}" for module, names in imports_of(package).items()
            for name in sorted(names) if name.startswith(forbidden)]


@pytest.mark.parametrize(("package", "forbidden"), [
    ("mailflow/sources", ("mailflow.transports",)),
    ("mailflow/transports", ("mailflow.sources",)),
    ("mailflow/connection", ("mailflow.sources", "mailflow.transports")),
    ("mailflow/core", ("mailflow.db", "mailflow.pipeline", "mailflow.cli", "mailflow.sources",
                       "mailflow.transports", "mailflow.connection", "mailflow.app", "mailflow.daemon")),
    ("parsers", ("mailflow",)),
    ("mailflow", ("tests", "bench")),
])
def test_imports_go_downward_only(package: str, forbidden: tuple[str, ...]) -> None:
    assert offenders(package, forbidden) == []


def test_only_the_demo_runs_the_demo_servers() -> None:
    users = [module for module, names in imports_of("mailflow").items() if "mailflow.demo_servers" in names]
    assert users == ["mailflow/demo.py"]


def test_the_check_sees_a_sideways_import() -> None:
    """The checker itself: an import that is there is found (so an empty list above means something)."""
    assert "mailflow/transports/smtp.py imports mailflow.connection.tls" in offenders(
        "mailflow/transports", ("mailflow.connection.tls",))
