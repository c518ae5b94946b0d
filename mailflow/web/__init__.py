"""The business team's web console (`mailflow web`): server-rendered pages, no JavaScript.

`create_app(app, clock, settings)` builds the Starlette application over an opened mailflow App."""

from mailflow.web.console import create_app

__all__ = ["create_app"]
