"""Login throttling, counted in the database so several console workers agree: too many failed
sign-ins for one account, or from one client address, within the window and further attempts
are refused (without checking the password) until the oldest failures leave the window."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from mailflow.db.models import LoginFailure
from mailflow.web.settings import WebSettings


def refused(s: Session, settings: WebSettings, account: str, client: str, now: datetime) -> bool:
    since = now - timedelta(minutes=settings.login_window_minutes)
    by_account = s.scalar(select(func.count()).select_from(LoginFailure).where(
        LoginFailure.account == _key(account), LoginFailure.at > since)) or 0
    if by_account >= settings.login_failures_per_account:
        return True
    by_client = s.scalar(select(func.count()).select_from(LoginFailure).where(
        LoginFailure.client == client[:64], LoginFailure.at > since)) or 0
    return by_client >= settings.login_failures_per_client


def record_failure(s: Session, account: str, client: str, now: datetime) -> None:
    s.add(LoginFailure(account=_key(account), client=client[:64], at=now))


def forget(s: Session, account: str, settings: WebSettings, now: datetime) -> None:
    """A successful sign-in clears the account's failures; old rows of anyone are pruned."""
    s.execute(delete(LoginFailure).where(LoginFailure.account == _key(account)))
    cutoff = now - timedelta(minutes=settings.login_window_minutes) * 4
    s.execute(delete(LoginFailure).where(LoginFailure.at < cutoff))


def _key(account: str) -> str:
    return account.strip().lower()[:320]
