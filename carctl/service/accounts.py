"""The technicians' accounts: a JSON file of names, roles and scrypt password hashes (`service.users_file`).

Rules of this module:
- Passwords are hashed with scrypt (hashlib, OpenSSL's), each with its own random salt and its parameters stored
  beside the hash, so they can be raised later without invalidating the accounts already made. N = 2^14, r = 8,
  p = 1 takes 16 MiB and about 0.1 s on a Raspberry Pi 4: slow for a guesser, bearable for a login.
- A password is read from a file, never from the command line (where `ps` and the shell's history would show it).
- The users file is hostile on reading like any file (size, JSON limits, every field checked): an account that
  cannot be read is left out and said, never a traceback. It is written atomically, 0600: the hashes are the
  firmware's alone (carctl/runtime/state_layout.py).
- Two roles: `read` sees every page; `maintenance` may also make changes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carctl import safejson
from carctl.atomicfile import write_atomic
from carctl.filein import read_bounded
from carctl.runtime.state_layout import PRIVATE

ROLES = ("read", "maintenance")
USER_NAME = re.compile(r"[a-z0-9_.-]{1,32}")
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_BYTES = 1024
MAX_USERS = 200
MAX_FILE_BYTES = 256 * 1024
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 14, 8, 1
# What a stored hash may ask for: enough to raise the cost later, not enough for a file to exhaust the board's memory.
MAX_SCRYPT_MEMORY_BYTES = 64 * 1024 * 1024
HASH_BYTES = 32
SALT_BYTES = 16


class AccountError(ValueError):
    """A name, role, password or users file that cannot be taken; the message says which, in one sentence."""


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    role: str
    password_hash: str

    @property
    def may_change(self) -> bool:
        return self.role == "maintenance"


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                            dklen=HASH_BYTES, maxmem=MAX_SCRYPT_MEMORY_BYTES)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def password_matches(password: str, stored: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from; False for a hash this firmware cannot check."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt" or not all(part.isdigit() and len(part) <= 8 for part in parts[1:4]):
        return False
    n, r, p = (int(part) for part in parts[1:4])
    if n < 2 or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16 or 128 * n * r * p > MAX_SCRYPT_MEMORY_BYTES // 2:
        return False
    try:
        salt, expected = base64.b64decode(parts[4], validate=True), base64.b64decode(parts[5], validate=True)
    except ValueError:
        return False
    if not 8 <= len(salt) <= 64 or not 16 <= len(expected) <= 64:
        return False
    digest = hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=salt, n=n, r=r, p=p,
                            dklen=len(expected), maxmem=MAX_SCRYPT_MEMORY_BYTES)
    return hmac.compare_digest(digest, expected)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def name_problem(name: str) -> str | None:
    if not USER_NAME.fullmatch(name):
        return f"a user name is 1-32 of a-z, 0-9, '_', '.' and '-' (got {name[:40]!r})"
    return None


def read_password_file(path: Path) -> str:
    try:
        data = read_bounded(path, MAX_PASSWORD_BYTES + 1)  # the password and its newline
    except OSError as error:
        # read_bounded's own sentences name the file already ("… is larger than …", "… is not a regular file").
        raise AccountError(f"password file {path}: {error.strerror}" if error.strerror else
                           f"password file {error}") from None
    try:
        password = data.decode("utf-8").removesuffix("\n").removesuffix("\r")
    except UnicodeDecodeError:
        raise AccountError(f"password file {path} is not UTF-8 text") from None
    if len(password) < MIN_PASSWORD_CHARS or any(ord(character) < 32 for character in password):
        raise AccountError(f"password file {path} must hold one password of at least {MIN_PASSWORD_CHARS} "
                           f"characters, without control characters")
    return password


@dataclass(frozen=True, slots=True)
class Accounts:
    users: dict[str, Account]
    problems: tuple[str, ...] = ()  # accounts left out, each with why

    def get(self, name: str) -> Account | None:
        return self.users.get(name)


def load(path: Path) -> Accounts:
    """The accounts in ``path`` (none when there is no file yet); AccountError when the file cannot be one."""
    try:
        data = read_bounded(path, MAX_FILE_BYTES)
    except FileNotFoundError:
        return Accounts({})
    except OSError as error:
        raise AccountError(f"users file {path}: {error.strerror or error}") from None
    try:
        document = safejson.loads(data, max_bytes=MAX_FILE_BYTES, max_depth=4, max_values=10 * MAX_USERS)
    except safejson.JsonRefused as error:
        raise AccountError(f"users file {path} is not acceptable JSON: {error}") from None
    if not isinstance(document, dict) or document.get("version") != 1 or not isinstance(document.get("users"), dict):
        raise AccountError(f"users file {path} is not a version-1 users file")
    users: dict[str, Account] = {}
    problems = []
    for name, entry in list(document["users"].items())[:MAX_USERS]:
        problem = _entry_problem(name, entry)
        if problem is not None:
            problems.append(f"{str(name)[:40]!r}: {problem}")
            continue
        users[name] = Account(name, entry["role"], entry["hash"])
    return Accounts(users, tuple(problems))


def _entry_problem(name: Any, entry: Any) -> str | None:
    if not isinstance(name, str) or name_problem(name):
        return "not a valid user name"
    if not isinstance(entry, dict) or entry.get("role") not in ROLES:
        return f"role must be one of {', '.join(ROLES)}"
    stored = entry.get("hash")
    if not isinstance(stored, str) or len(stored) > 256 or not stored.startswith("scrypt$"):
        return "not a scrypt hash"
    return None


def add_user(path: Path, name: str, role: str, password: str) -> bool:
    """Add the account, or replace its role and password; True when it was new."""
    problem = name_problem(name)
    if problem:
        raise AccountError(problem)
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)} (got {role[:40]!r})")
    accounts = load(path)
    if accounts.problems:
        raise AccountError(f"users file {path} has accounts that cannot be read ({accounts.problems[0]}): fix or "
                           f"remove them first, so that nothing is lost in rewriting it")
    if name not in accounts.users and len(accounts.users) >= MAX_USERS:
        raise AccountError(f"users file {path} holds {MAX_USERS} accounts already")
    users = {account.name: {"role": account.role, "hash": account.password_hash}
             for account in accounts.users.values()}
    users[name] = {"role": role, "hash": hash_password(password)}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, safejson.dumps({"version": 1, "users": users}) + b"\n", PRIVATE)
    return name not in accounts.users
