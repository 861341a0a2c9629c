"""Sign-in for the pages: the scoring service's users and roles, a password, a signed session cookie.

Decisions:
  * Name + password (not the bearer token): a social worker cannot be asked to paste a 43-character
    token. Passwords are hashed with scrypt (standard library, salted, memory-hard); the bearer token
    stays the machine credential of the API. ``doudi users password NAME`` sets one.
  * Sessions live in the database (``web_sessions``) so that signing out and revoking a user end them at
    once; the cookie holds a random secret (only its SHA-256 is stored) plus an HMAC signature with the
    server's key (``DOUDI_SESSION_SECRET``; a random per-process key if unset, which signs everyone out
    at restart). The cookie is HttpOnly, SameSite=Lax, Secure when configured, and expires with the
    session (``DOUDI_SESSION_HOURS``, 8 by default).
  * CSRF: every form carries the session's random token, compared in constant time; the sign-in form,
    before any session exists, uses a double-submit cookie.
  * Five failed sign-ins for one name within 15 minutes lock that name for the rest of the window
    (counted from the audit log, where each attempt is written).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets

import sqlalchemy as sa
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.orm import Session

from serving.auth import Principal, Role, hash_token
from serving.errors import BadRequest, NotFound
from serving.orm import AuditLog, User, WebSession, utcnow

PAGE_ROLES = frozenset({Role.WORKER, Role.SUPERVISOR, Role.ADMIN})
"""Roles that may sign in to the pages (platform and modeler accounts are for machines and models)."""
MIN_PASSWORD = 10
MAX_FAILED = 5
LOCK_WINDOW = dt.timedelta(minutes=15)
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class PageSettings(BaseSettings):
    """Settings of the pages, from the environment (``DOUDI_*``)."""

    model_config = SettingsConfigDict(env_prefix="DOUDI_", env_file=None, extra="ignore")

    session_secret: SecretStr | None = Field(default=None, description="Key signing session cookies.")
    session_hours: float = Field(default=8.0, gt=0, le=24 * 14, description="How long a sign-in lasts.")
    cookie_secure: bool = Field(default=False, description="Send cookies over HTTPS only (set behind TLS).")
    page_size: int = Field(default=25, ge=5, le=200, description="Alerts per page of the list.")

    def key(self) -> bytes:
        """The signing key (random per process when none is configured)."""
        if self.session_secret is not None:
            return self.session_secret.get_secret_value().encode("utf-8")
        return _process_key()


_KEY: list[bytes] = []


def _process_key() -> bytes:
    if not _KEY:
        _KEY.append(secrets.token_bytes(32))
    return _KEY[0]


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64) of a password."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, dklen=32, **_SCRYPT)
    params = f"{_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}"
    return f"scrypt${params}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches a ``hash_password`` string (False for no or a malformed hash)."""
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        actual = hashlib.scrypt(
            password.encode("utf-8"), salt=base64.b64decode(salt), dklen=32, n=int(n), r=int(r), p=int(p)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, base64.b64decode(digest))


def set_password(session: Session, name: str, password: str) -> User:
    """Set a user's page password.

    Raises:
        NotFound: no such user.
        BadRequest: the password is shorter than ``MIN_PASSWORD`` characters.
    """
    user = session.scalar(sa.select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"no user named {name!r}")
    if len(password) < MIN_PASSWORD:
        raise BadRequest(f"a password needs at least {MIN_PASSWORD} characters")
    user.password_hash = hash_password(password)
    return user


def sign(value: str, key: bytes) -> str:
    """``value.signature`` (HMAC-SHA256, base64url)."""
    mac = hmac.new(key, value.encode("utf-8"), hashlib.sha256).digest()
    return f"{value}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def unsign(signed: str | None, key: bytes) -> str | None:
    """The value of a ``sign``-ed string, or None when missing or tampered with."""
    if not signed or "." not in signed:
        return None
    value = signed.rsplit(".", 1)[0]
    return value if hmac.compare_digest(sign(value, key), signed) else None


def principal_of(user: User) -> Principal:
    """The scoring service's principal for a user (same roles and scope as its bearer token)."""
    return Principal(
        user_id=user.id, name=user.name, role=Role(user.role), region_codes=tuple(user.region_codes)
    )


def recent_failures(session: Session, name: str, now: dt.datetime) -> int:
    """Failed sign-ins for ``name`` within the lock window."""
    return (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(AuditLog)
            .where(
                AuditLog.action == "sign_in",
                AuditLog.outcome == "failed",
                AuditLog.user_name == name[:100],
                AuditLog.at > now - LOCK_WINDOW,
            )
        )
        or 0
    )


def authenticate_password(session: Session, name: str, password: str) -> User | None:
    """The active page user with this name and password, or None (same answer for every failure)."""
    user = session.scalar(sa.select(User).where(User.name == name))
    if user is None:
        # Spend the same time as a real check, so that response time does not reveal which names exist.
        verify_password(hash_password("x" * MIN_PASSWORD), password)
        return None
    if not verify_password(user.password_hash, password) or not user.active:
        return None
    if Role(user.role) not in PAGE_ROLES:
        return None
    return user


def open_session(session: Session, user: User, *, hours: float, now: dt.datetime) -> str:
    """Start a session for ``user`` and return its secret (for the cookie, before signing)."""
    secret = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            token_hash=hash_token(secret),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + dt.timedelta(hours=hours),
        )
    )
    session.execute(sa.delete(WebSession).where(WebSession.user_id == user.id, WebSession.expires_at < now))
    return secret


def resolve(
    session: Session, secret: str | None, now: dt.datetime | None = None
) -> tuple[Principal, WebSession] | None:
    """The signed-in principal and its session row, or None (no, expired or revoked session)."""
    if not secret:
        return None
    now = now or utcnow()
    row = session.scalar(sa.select(WebSession).where(WebSession.token_hash == hash_token(secret)))
    if row is None or row.expires_at <= now:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active or Role(user.role) not in PAGE_ROLES:
        return None
    return principal_of(user), row


def close_session(session: Session, secret: str | None) -> None:
    """End a session (sign-out)."""
    if secret:
        session.execute(sa.delete(WebSession).where(WebSession.token_hash == hash_token(secret)))
