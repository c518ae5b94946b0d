"""The Alembic migrations build exactly the schema the models describe, up and down, on both databases."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from mailflow.db.database import Database, alembic_config


def test_migrations_match_the_models_and_go_both_ways(db_url: str) -> None:
    db = Database(db_url)
    try:
        db.upgrade()
        cfg = alembic_config(db)
        command.check(cfg)  # raises when the models and the migrations disagree
        command.downgrade(cfg, "base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        db.upgrade()
        uniques = {u["name"]: u["column_names"] for u in inspect(db.engine).get_unique_constraints("ledger")}
        assert uniques["uq_ledger_notice"] == ["case_id", "stage", "step", "kind", "due_at"]
    finally:
        db.dispose()
