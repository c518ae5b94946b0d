"""Sign-in with OpenID Connect (Microsoft Entra ID): placeholder until the flow lands."""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute


class OidcClient:
    def __init__(self, settings: Any, console: Any) -> None:
        self.settings, self.console = settings, console


def routes() -> list[BaseRoute]:
    return []
