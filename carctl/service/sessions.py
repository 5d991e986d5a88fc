"""Logins, sessions and lockouts of the service tool, with no I/O and a clock passed in (tested frame by frame).

Rules of this module:
- A session is a random token (32 bytes from `secrets`) that the browser holds in an HttpOnly, SameSite=Strict
  cookie; the server keeps only its SHA-256, the account, the role, its expiry and its CSRF token. A session ends at
  its expiry (`service.session_s` after the login, not extended: a forgotten phone does not stay logged in) or at
  logout. A restart of the service process ends them all. It also keeps the SHA-256 of the account's stored hash at
  the login, so that a change can be refused to a session whose account has changed since (app.py: a role taken
  away, a password changed because it was seen).
- Every change (a POST) carries the session's CSRF token in its form, compared in constant time: another site's page
  cannot make a technician's browser change anything, whatever the browser does with SameSite.
- A lockout counts failed logins in a row per account and per client address; at `service.lockout_failures` that
  account, or that address, is refused without even checking the password for `service.lockout_s`. A good login
  clears the account's count and the address's.
- Nothing grows without bound: at most MAX_SESSIONS sessions (the oldest goes first) and MAX_TRACKED failure
  records (the stalest goes first), so a flood of logins from forged addresses costs a fixed amount of memory.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass

MAX_SESSIONS = 64
MAX_TRACKED = 1024
TOKEN_BYTES = 32


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class Session:
    user: str
    role: str
    csrf_token: str
    expires_s: float
    account_digest: str = ""  # the SHA-256 of the account's stored password hash at the login

    def account_unchanged(self, role: str, password_hash: str) -> bool:
        """Whether the account, as the users file holds it now, is the one this session logged in as."""
        return role == self.role and hmac.compare_digest(_digest(password_hash), self.account_digest)

    @property
    def may_change(self) -> bool:
        return self.role == "maintenance"


class Sessions:
    def __init__(self, lifetime_s: float) -> None:
        self.lifetime_s = lifetime_s
        self._by_digest: OrderedDict[str, Session] = OrderedDict()

    def open(self, user: str, role: str, now_s: float, password_hash: str = "") -> tuple[str, Session]:
        """A new session: (the token for the cookie, the session)."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        session = Session(user, role, secrets.token_urlsafe(TOKEN_BYTES), now_s + self.lifetime_s,
                          _digest(password_hash))
        while len(self._by_digest) >= MAX_SESSIONS:
            self._by_digest.popitem(last=False)
        self._by_digest[_digest(token)] = session
        return token, session

    def get(self, token: str | None, now_s: float) -> Session | None:
        if not token or len(token) > 128:
            return None
        digest = _digest(token)
        session = self._by_digest.get(digest)
        if session is None:
            return None
        if now_s >= session.expires_s:
            del self._by_digest[digest]
            return None
        return session

    def close(self, token: str | None) -> None:
        if token and len(token) <= 128:
            self._by_digest.pop(_digest(token), None)

    def close_user(self, user: str) -> None:
        for digest in [digest for digest, session in self._by_digest.items() if session.user == user]:
            del self._by_digest[digest]

    def __len__(self) -> int:
        return len(self._by_digest)


def csrf_matches(session: Session, submitted: str | None) -> bool:
    return isinstance(submitted, str) and hmac.compare_digest(session.csrf_token.encode(),
                                                              submitted.encode("utf-8", "surrogatepass"))


@dataclass(slots=True)
class _Failures:
    count: int
    locked_until_s: float


class Lockout:
    """Failed logins in a row, per account ("user:NAME") and per client address ("client:ADDRESS")."""

    def __init__(self, failures: int, lockout_s: float) -> None:
        self.failures = failures
        self.lockout_s = lockout_s
        self._tracked: OrderedDict[str, _Failures] = OrderedDict()

    def locked(self, keys: tuple[str, ...], now_s: float) -> float:
        """The seconds left of the longest lockout among ``keys`` (0 when none is locked)."""
        left = 0.0
        for key in keys:
            record = self._tracked.get(key)
            if record is not None and record.locked_until_s > now_s:
                left = max(left, record.locked_until_s - now_s)
        return left

    def failed(self, keys: tuple[str, ...], now_s: float) -> None:
        for key in keys:
            record = self._tracked.pop(key, None) or _Failures(0, 0.0)
            if record.locked_until_s and record.locked_until_s <= now_s:
                record = _Failures(0, 0.0)  # a lockout that has run out starts the count again
            record.count += 1
            if record.count >= self.failures:
                record.locked_until_s = now_s + self.lockout_s
            while len(self._tracked) >= MAX_TRACKED:
                self._tracked.popitem(last=False)
            self._tracked[key] = record

    def succeeded(self, keys: tuple[str, ...]) -> None:
        for key in keys:
            self._tracked.pop(key, None)

    def __len__(self) -> int:
        return len(self._tracked)
