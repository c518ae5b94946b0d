"""The console's settings are the `[web]` config table (mailflow/config.py: WebSettings,
OidcSettings); the roles, each able to do everything the one before it can."""

from __future__ import annotations

from mailflow.config import OidcSettings, WebSettings

ROLES = ("viewer", "team", "admin")

__all__ = ["ROLES", "OidcSettings", "WebSettings", "role_at_least"]


def role_at_least(role: str | None, needed: str) -> bool:
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)
