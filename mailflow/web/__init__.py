"""The business team's web console (`mailflow web`): server-rendered pages, no JavaScript.

`create_app(app, clock, settings)` builds the Starlette application over an opened mailflow App
(imported on use: the config's [web] table must load without the [web] extra installed)."""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from mailflow.web.console import create_app

        return create_app
    raise AttributeError(name)
