"""Every string stored fits its column: the lengths come from the models, nowhere else.

A message can carry anything (a 5,000-character Message-ID, a 2,000-character sender, NUL bytes,
lone surrogates from a broken charset). PostgreSQL refuses such values (`value too long`,
`cannot contain NUL`, `invalid byte sequence`), and one refused INSERT used to block the
mailbox. `fit()` makes a value storable; `bound_session()` applies it to every string column
of every row a session flushes, so nothing stored from a message can be refused for its size.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, String, event, inspect
from sqlalchemy.orm import Mapper, Session, sessionmaker
from sqlalchemy.orm.attributes import QueryableAttribute

ELLIPSIS = "…"
JSON_STRING_CHARS = 10_000   # a string inside a JSON column (event details, form fields)
# A JSON column whose strings are whole documents made here, not values read from a message (an
# outbox draft's rendered bodies), says so with info={JSON_UNBOUNDED: True}: its strings are
# cleaned, never cut (a cut body would reach its reader as a letter with its end missing).
JSON_UNBOUNDED = "json_unbounded"


def clean(value: str) -> str:
    """No NUL (PostgreSQL text cannot hold one) and no lone surrogate (not encodable as UTF-8)."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def cut(value: str, limit: int | None) -> str:
    value = clean(value)
    if limit is not None and len(value) > limit:
        return value[: max(limit - 1, 0)] + ELLIPSIS
    return value


def column_limit(column: Any) -> int | None:
    """The most characters the column takes: String(n)'s n, or a Text column's info['max_chars']."""
    limit = column.info.get("max_chars") if hasattr(column, "info") else None
    if limit is None and isinstance(column.type, String):
        limit = column.type.length
    return int(limit) if limit is not None else None


def fit(attribute: QueryableAttribute[Any] | Any, value: str | None) -> str | None:
    """`value` made storable in the model column `attribute` (e.g. `fit(InboundMessage.sender, s)`)."""
    if value is None:
        return None
    return cut(value, column_limit(attribute.property.columns[0]))


def fit_json(value: Any, limit: int | None = JSON_STRING_CHARS) -> Any:
    """Every string inside a JSON value (keys too) cleaned and cut to `limit`."""
    if isinstance(value, str):
        return cut(value, limit)
    if isinstance(value, dict):
        return {fit_json(k, limit): fit_json(v, limit) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [fit_json(v, limit) for v in value]
    return value


def fit_row(obj: Any) -> None:
    """Every string and JSON column of a mapped object, fitted in place."""
    mapper: Mapper[Any] = obj.__mapper__
    loaded = inspect(obj).dict   # only what is in memory: fitting never loads a row
    for attr in mapper.column_attrs:
        column = attr.columns[0]
        value = loaded.get(attr.key)
        if isinstance(value, str):
            fitted: Any = cut(value, column_limit(column))
        elif isinstance(column.type, JSON) and isinstance(value, dict | list):
            fitted = fit_json(value, None if column.info.get(JSON_UNBOUNDED) else JSON_STRING_CHARS)
        else:
            continue
        if fitted != value:
            setattr(obj, attr.key, fitted)


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    for obj in list(session.new) + list(session.dirty):
        if hasattr(obj, "__mapper__"):
            fit_row(obj)


def bound_session(factory: sessionmaker[Session]) -> None:
    """Every session the factory makes fits its rows before each flush."""
    event.listen(factory, "before_flush", _before_flush)
