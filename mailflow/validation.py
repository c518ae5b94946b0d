"""One way to validate what people write: pydantic models, and their errors as one line.

Every table of the config, a connector's options, the directory and a policy file are `Table`
models: strict types (no "60" for 60), every key known (an unknown one is an error with the nearest
allowed key), frozen. `validate` turns the first problem into one `ConfigError` line naming the
file, the table and key, and what is wrong:

    mailflow.toml: [daemon] poll_seconds: expected an integer, got a string 'often'
    mailflow.toml: [[partnership]] #1: unknown key 'adress' (did you mean 'address'?)

No I/O here: the loaders read the files and pass what they parsed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from mailflow.errors import ConfigError, unknown_key_message

T = TypeVar("T", bound=BaseModel)
_Item = TypeVar("_Item")


class Table(BaseModel):
    """A TOML table: strict types, every key known, read-only once loaded."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _only_known_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            allowed = {field.alias or name for name, field in cls.model_fields.items()}
            for key in data:
                if key not in allowed:
                    raise PydanticCustomError("unknown_key", "{message}",
                                              {"message": unknown_key_message(str(key), allowed)})
        return data


def validate(model: type[T], data: Any, where: str, context: Mapping[str, Any] | None = None, *,
             table: Sequence[str | int] = (), dotted: bool = False, error: type[ConfigError] = ConfigError) -> T:
    """`data` as a `model`, or an `error` naming `where` (the file), the key and the problem.
    `table` is where `data` sits in the file (("partnership", 0, "mailbox")); `dotted` writes keys
    as `stages[1].steps[2].days` rather than `[[partnership]] #1 mailbox.port`."""
    try:
        return model.model_validate(data, context=dict(context or {}))
    except ValidationError as exc:
        raise config_error(where, exc, table, dotted=dotted, error=error) from None


def config_error(where: str, exc: ValidationError, table: Sequence[str | int] = (), *, dotted: bool = False,
                 error: type[ConfigError] = ConfigError) -> ConfigError:
    """The first of pydantic's errors as one line (and how many more there are)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return located_error(where, (*table, *first["loc"]), _problem(first) + more, dotted=dotted, error=error)


def located_error(where: str, loc: Sequence[str | int], problem: str, *, dotted: bool = False,
                  error: type[ConfigError] = ConfigError) -> ConfigError:
    """`where: [table] key: problem` (or `where: table.key: problem` when `dotted`)."""
    label = dotted_path(loc) if dotted else key_path(loc)
    return error(f"{where}: {label}: {problem}" if label else f"{where}: {problem}")


def key_path(loc: Sequence[str | int]) -> str:
    """("partnership", 0, "mailbox", "port") -> "[[partnership]] #1 mailbox.port"."""
    parts = _without_tags(loc)
    if not parts:
        return ""
    head, rest = parts[0], list(parts[1:])
    if rest and isinstance(rest[0], int):
        label = f"[[{head}]] #{int(rest.pop(0)) + 1}"
    else:
        label = f"[{head}]"
    tail = dotted_path(rest)
    return f"{label} {tail}" if tail else label


def dotted_path(loc: Sequence[str | int]) -> str:
    """("stages", 0, "steps", 1, "days") -> "stages[1].steps[2].days" (counting from 1)."""
    out = ""
    for p in _without_tags(loc):
        out += f"[{p + 1}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out


def _without_tags(loc: Sequence[str | int]) -> list[str | int]:
    """Without the tags pydantic adds for the member of a union it tried ("kind=imap")."""
    return [p for p in loc if not (isinstance(p, str) and p.startswith("kind="))]


_EXPECTED = {
    "string_type": "a string", "int_type": "an integer", "int_parsing": "an integer", "bool_type": "true or false",
    "float_type": "a number", "list_type": "a list", "tuple_type": "a list", "dict_type": "a table",
    "model_type": "a table", "model_attributes_type": "a table", "dataclass_type": "a table",
}


def _problem(error: Any) -> str:
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "unknown_key":
        return str(ctx["message"])
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {describe(value)}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "unknown_kind":
        got = value.get("kind") if isinstance(value, Mapping) else None
        return f"{error['msg']}, got {_short(got) if got is not None else 'none'}"
    if kind == "missing":
        return "is required"
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx["expected"]))
        return f"{_short(value)} is not one of {', '.join(choices)}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        sign = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[kind]
        bound = next(iter(ctx.values()))
        return f"must be {sign} {bound}, got {_short(value)}"
    if kind == "too_short":
        return f"needs at least {ctx['min_length']}, got {ctx['actual_length']}"
    if kind == "too_long":
        return f"at most {ctx['max_length']} allowed, got {ctx['actual_length']}"
    if kind == "extra_forbidden":
        return "unknown key"
    msg = str(error["msg"])
    return f"{msg[:1].lower()}{msg[1:]}, got {_short(value)}"


_HUMAN = {str: "a string", int: "an integer", float: "a number", bool: "a boolean", list: "a list",
          dict: "a table"}


def describe(value: Any) -> str:
    """`an integer 42`, for "expected a string, got an integer 42"."""
    kind = _HUMAN.get(type(value), type(value).__name__)
    return f"{kind} {_short(value)}" if not isinstance(value, dict) else kind


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------- relative paths

def _relative_path(value: Any, info: ValidationInfo) -> Any:
    """A path in a file is relative to that file's folder (the `base_dir` of the context)."""
    if not isinstance(value, str | Path):
        raise PydanticCustomError("string_type", "Input should be a valid string")
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    base = (info.context or {}).get("base_dir")
    return (Path(base) if base is not None else Path.cwd()) / path


RelativePath = Annotated[Path, BeforeValidator(_relative_path)]


def as_tuple(value: Any) -> Any:
    """A TOML array for a tuple field (strict mode takes only tuples)."""
    return tuple(value) if isinstance(value, list) else value


# A TOML array, kept as a tuple (read-only): `business_team: Array[str]`.
Array = Annotated[tuple[_Item, ...], BeforeValidator(as_tuple)]
