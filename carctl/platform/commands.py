"""Platform commands: authenticated, signed, fresh, applied once. Sans-I/O: bytes and a clock reading in, a verdict out.

Rules of this module:
- A command is a JSON object: id, type, community, car, issued_at and expires_at (Unix seconds), params, and
  signature: HMAC-SHA256, hex, under the community's key, over the canonical form of every other field (JSON with
  sorted keys, no spaces, UTF-8).
- Refused, with the reason, and nothing changes: too large, not JSON, a missing or mistyped field, unsigned, a bad
  signature, another community or car, issued in the future, expired, living longer than MAX_LIFETIME_S, an id seen
  before (a replay), an unknown type, or parameters that do not fit the type.
- check() is total: the payload is parsed with limits (carctl/safejson.py: size, nesting depth, number length,
  valid UTF-8 and Unicode) before anything else reads it, and any payload gives a verdict, never an exception.
  A verdict without an id (even the id is unreadable) cannot be acknowledged: the link drops it and counts it.
- A command without `params` has none: it is accepted as `{}` where its type takes no parameters.
- The car's clock may be wrong: the board has no real-time clock, and until NTP answers after a power cut its time
  can be far off. The caller says whether the kernel knows the clock to be synchronised (carctl/clocksync.py; this
  module asks nothing itself); when it is known not to be, an expired or future command is refused naming the car's
  clock, so that nobody goes looking for a fault in the platform's commands.
- The replay memory keeps each id until its command expires, so it stays small and a captured command can never be
  used again; the caller persists it (outbox.py) so a restart does not forget.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from carctl import safejson
from carctl.protocol.loopback import ALARM_ID

MAX_COMMAND_BYTES = 4 * 1024 * 1024  # resident.enroll carries a few photos
MAX_LIFETIME_S = 600.0
CLOCK_SKEW_S = 30.0
MAX_PHOTOS = 5
MODES = ("normal", "out_of_service", "independent")
# A command is an object of parameters, at most a list inside: 3 levels deep. Times are Unix seconds, so 24
# characters are plenty for any number a command carries; 1e10 s is the year 2286.
MAX_DEPTH = 4
MAX_NUMBER_CHARS = 24
MAX_VALUES = 1000
LATEST_TIME_S = 1e10
SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")
# The refusal of a command that is out of date only by a clock the car knows to be wrong.
UNSYNCHRONISED = "the car's clock is not synchronised ({verdict} by its clock); check NTP on the car"


@dataclass(frozen=True, slots=True)
class Verdict:
    accepted: bool
    command_id: str | None
    reason: str
    command: dict[str, Any] | None = None

    def ack(self, result: dict[str, Any] | None = None) -> dict[str, Any]:
        message: dict[str, Any] = {"id": self.command_id, "accepted": self.accepted, "reason": self.reason}
        if result is not None:
            message["result"] = result
        return message


def canonical(command: dict[str, Any]) -> bytes:
    body = {key: value for key, value in command.items() if key != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(command: dict[str, Any], key: bytes) -> dict[str, Any]:
    return {**command, "signature": hmac.new(key, canonical(command), hashlib.sha256).hexdigest()}


def _landing(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 64


def _landings(value: Any) -> bool:
    return isinstance(value, list) and len(value) <= 64 and all(_landing(v) for v in value)


def _text(value: Any, limit: int = 64) -> bool:
    return isinstance(value, str) and 0 < len(value.strip()) <= limit


def _photos(value: Any) -> bool:
    return (isinstance(value, list) and 1 <= len(value) <= MAX_PHOTOS
            and all(isinstance(p, str) and 0 < len(p) <= MAX_COMMAND_BYTES for p in value))


# For each command type: its parameters and a check for each; optional ones are marked with a trailing '?'.
SCHEMAS: dict[str, dict[str, Callable[[Any], bool]]] = {
    "face.enable": {},
    "face.disable": {"wipe?": lambda v: isinstance(v, bool)},
    "resident.enroll": {"resident": _text, "home_landing": _landing, "allowed_landings?": _landings,
                        "consent": lambda v: _text(v, 128), "photos": _photos},
    "resident.delete": {"resident": _text},
    "permissions.set": {"enabled": lambda v: isinstance(v, bool), "free_landings?": _landings},
    "car.mode": {"mode": lambda v: v in MODES},
    "car.home_landing": {"landing": _landing},
    # The duty operator has seen the car's alarm: the rider is told help is on the way. It does not end the alarm
    # (only the rescuer's reset at the car does). ``alarm``: the id of the alarm seen (its events' alarm_id); an
    # acknowledgement naming an alarm that no longer stands is refused.
    "alarm.acknowledge": {"alarm?": lambda v: isinstance(v, str) and ALARM_ID.fullmatch(v) is not None},
    "config.get": {},
}


def _check_params(kind: str, params: Any) -> str | None:
    if not isinstance(params, dict):
        return "params must be an object"
    schema = SCHEMAS[kind]
    known = {name.rstrip("?") for name in schema}
    for name in params:
        if name not in known:
            return f"unknown parameter {name!r} for {kind}"
    for name, check in schema.items():
        key = name.rstrip("?")
        if key not in params:
            if not name.endswith("?"):
                return f"missing parameter {key!r} for {kind}"
            continue
        if not check(params[key]):
            return f"bad value for parameter {key!r} of {kind}"
    return None


class CommandGate:
    """Verifies commands for one car of one community."""

    def __init__(self, community: str, car: str, key: bytes, seen: dict[str, float] | None = None) -> None:
        self.community = community
        self.car = car
        self.key = key
        self.seen: dict[str, float] = dict(seen or {})  # command id -> its expiry, for replay refusal

    def check(self, payload: bytes, now_s: float, clock_synchronised: bool | None = None) -> Verdict:
        """The verdict on one payload, whatever its bytes. ``clock_synchronised`` is what the kernel says of the
        car's clock: False names it in the refusal of an expired or future command; None (cannot tell) and True do
        not."""
        try:
            return self._check(payload, now_s, clock_synchronised is False)
        except Exception as error:  # noqa: BLE001 - the last guard: a parser bug must never reach the link's thread
            return Verdict(False, None, f"malformed: could not be checked ({type(error).__name__})")

    def _check(self, payload: bytes, now_s: float, clock_unsynchronised: bool) -> Verdict:
        if not isinstance(payload, (bytes, bytearray)):
            return Verdict(False, None, "malformed: not bytes")
        if len(payload) > MAX_COMMAND_BYTES:
            return Verdict(False, None, f"too large ({len(payload)} bytes, at most {MAX_COMMAND_BYTES})")
        try:
            command = safejson.loads(payload, max_bytes=MAX_COMMAND_BYTES, max_depth=MAX_DEPTH,
                                     max_number_chars=MAX_NUMBER_CHARS, max_values=MAX_VALUES)
        except safejson.JsonRefused as error:
            return Verdict(False, None, f"malformed: {error}")
        if not isinstance(command, dict):
            return Verdict(False, None, "malformed: not a JSON object")
        command_id = command.get("id")
        if not _text(command_id, 128) or not command_id.isprintable():
            return Verdict(False, None, "malformed: missing or bad 'id'")
        for field, check in (("type", lambda v: _text(v, 64)), ("community", lambda v: _text(v, 64)),
                             ("car", lambda v: _text(v, 64)), ("issued_at", _seconds), ("expires_at", _seconds)):
            if field not in command or not check(command[field]):
                return Verdict(False, command_id, f"malformed: missing or bad {field!r}")
        signature = command.get("signature")
        if signature is None or signature == "":
            return Verdict(False, command_id, "unsigned")
        if not isinstance(signature, str) or not SIGNATURE.fullmatch(signature):
            return Verdict(False, command_id, "bad signature (not 64 hex digits)")
        expected = hmac.new(self.key, canonical(command), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature.lower(), expected):
            return Verdict(False, command_id, "bad signature")
        if command["community"] != self.community:
            return Verdict(False, command_id, f"for community {command['community']!r}, not this car's")
        if command["car"] not in (self.car, "*"):
            return Verdict(False, command_id, f"for car {command['car']!r}, not this one")
        issued, expires = float(command["issued_at"]), float(command["expires_at"])
        if issued > now_s + CLOCK_SKEW_S:
            if clock_unsynchronised:
                return Verdict(False, command_id, UNSYNCHRONISED.format(verdict="issued in the future"))
            return Verdict(False, command_id, "issued in the future (check the platform's clock)")
        if expires <= now_s:
            if clock_unsynchronised:
                return Verdict(False, command_id, UNSYNCHRONISED.format(verdict="expired"))
            return Verdict(False, command_id, "expired")
        if expires - issued > MAX_LIFETIME_S:
            return Verdict(False, command_id, f"lives longer than {MAX_LIFETIME_S:.0f} s")
        self._forget_expired(now_s)
        if command_id in self.seen:
            return Verdict(False, command_id, "replayed: this command id was already received")
        if command["type"] not in SCHEMAS:
            self.seen[command_id] = expires
            return Verdict(False, command_id, f"unknown command type {command['type']!r}")
        params = command.get("params", {})
        problem = _check_params(command["type"], params)
        self.seen[command_id] = expires
        if problem:
            return Verdict(False, command_id, problem)
        return Verdict(True, command_id, "accepted", {**command, "params": params})

    def _forget_expired(self, now_s: float) -> None:
        for command_id in [cid for cid, expiry in self.seen.items() if expiry <= now_s]:
            del self.seen[command_id]


def _seconds(value: Any) -> bool:
    """Unix seconds: a finite number after 1970 and before 2286 (numbers are at most 24 characters: never huge)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and 0 < value < LATEST_TIME_S)
