"""Console accounts: local ones with argon2 password hashes (`mailflow users add`), and OpenID
Connect users recorded at their first sign-in. There is no default account and no default password."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.addresses import address_of
from mailflow.db.models import WebUser
from mailflow.web.settings import ROLES

MIN_PASSWORD = 12
MAX_PASSWORD = 1024          # argon2 hashes whatever it is given: bound the work
_hasher = PasswordHasher()
# Verified against when the account does not exist, so a wrong address takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class AccountError(ValueError):
    """A request about an account that cannot be done, said in a sentence."""


@dataclass(frozen=True)
class SignedIn:
    """Who is signed in, as every page sees them."""

    id: int
    email: str
    name: str
    role: str
    epoch: int

    @property
    def actor(self) -> str:
        """How the audit trail names them: "web:Jo Officer <jo.officer@…>", or "web:<address>" for an
        account without a name (the CLI's actions read "cli:<who>"). Fits the events' actor column."""
        if self.name and self.name != self.email:
            named = f"web:{self.name[:80]} <{self.email}>"
            if len(named) <= 320:
                return named
        return f"web:{self.email}"[:320]


def normalise_email(text: str) -> str:
    address = address_of(text.strip()) or ""
    if not address or "@" not in address or len(address) > 320:
        raise AccountError(f"{text.strip()[:80]!r} is not an email address")
    return address.lower()


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"role {role!r}: choose one of {', '.join(ROLES)}")
    return role


def generate_password() -> str:
    return secrets.token_urlsafe(15)   # 20 characters, 120 bits


def add_local_user(s: Session, email: str, role: str, password: str, now: datetime,
                   name: str | None = None, replace: bool = False) -> WebUser:
    """A local account, or (with `replace`) a new password and role for an existing one."""
    address, role = normalise_email(email), check_role(role)
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AccountError(f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    user = s.scalars(select(WebUser).where(WebUser.email == address)).first()
    if user is not None and not replace:
        raise AccountError(f"{address} already has an account (--replace sets a new password)")
    if user is None:
        user = WebUser(email=address, kind="local", created_at=now, session_epoch=0, active=True)
        s.add(user)
    user.role, user.kind, user.active = role, "local", True
    user.name = name or user.name
    user.password_hash = _hasher.hash(password)
    user.session_epoch = (user.session_epoch or 0) + 1   # signs out every session of the old password
    s.flush()
    return user


def remove_user(s: Session, email: str) -> bool:
    user = s.scalars(select(WebUser).where(WebUser.email == normalise_email(email))).first()
    if user is None:
        return False
    user.active = False
    user.password_hash = None
    user.session_epoch += 1
    return True


def check_password(s: Session, email: str, password: str) -> WebUser | None:
    """The local account these credentials open, or None (same work either way)."""
    try:
        address = normalise_email(email)
    except AccountError:
        address = ""
    user = s.scalars(select(WebUser).where(WebUser.email == address)).first() if address else None
    stored = user.password_hash if user is not None and user.active and user.kind == "local" else None
    if len(password) > MAX_PASSWORD:
        return None
    try:
        _hasher.verify(stored or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if stored is None or user is None:
        return None
    if _hasher.check_needs_rehash(stored):
        user.password_hash = _hasher.hash(password)
    return user


def record_oidc_user(s: Session, email: str, name: str | None, role: str, now: datetime) -> WebUser:
    """An OpenID Connect user as they signed in just now: their role is what the groups say today."""
    address = normalise_email(email)
    user = s.scalars(select(WebUser).where(WebUser.email == address)).first()
    if user is None:
        user = WebUser(email=address, kind="oidc", created_at=now, session_epoch=0, active=True)
        s.add(user)
    elif user.kind == "local":
        raise AccountError(f"{address} has a local account; sign in with its password")
    if user.role != role:
        user.session_epoch = (user.session_epoch or 0) + 1
    user.role, user.name, user.active = role, (name or "")[:200] or None, True
    user.last_sign_in_at = now
    s.flush()
    return user


def signed_in(user: WebUser) -> SignedIn:
    return SignedIn(id=user.id, email=user.email, name=user.name or user.email, role=user.role,
                    epoch=user.session_epoch)


def load_signed_in(s: Session, user_id: int, epoch: int) -> SignedIn | None:
    user = s.get(WebUser, user_id)
    if user is None or not user.active or user.session_epoch != epoch:
        return None
    return signed_in(user)
