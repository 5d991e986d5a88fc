"""The messages on the side channels between the firmware's processes, checked totally. Sans-I/O: a JSON value in
(carctl/runtime/sidechannel.py parsed it with limits), a typed message or a refusal out.

Rules of this module:
- Each receiver has its own parser and accepts only its own message types:
  the loop from the platform link: `mode` (a mode the platform may request), `reload` (its settings changed), each
  with the id of the command that asked (for the maintenance record),
  `event_stored` (the link's outbox has an event); the loop from the face worker: `recognition`;
  the platform link from the loop: `state`, `event`; the loop from the service tool: `watch`, `audit`, `reload`
  (a maintenance account changed the settings file; it carries nothing else), `runs` and `run` (the run recorder's
  questions, protocol/run_records.py, which also checks their answers) and `commission` (a learning run, a brake test
  or a fault reset asked for: a request the core decides on); the service tool from the loop: `live`, `health`,
  `events`, the run recorder's answers and `commission` (what the core made of a request).
- A recognition or a mode request that waited in the socket longer than its source's maximum age (core/rates.py)
  is refused too (age_problem): the runtime asks, with its clock.
- Any other value of any type is a Refused with a short, fixed reason (the health record counts them by reason),
  never an exception. Numbers from outside are range-checked: landings exist, counts are finite and bounded.
- A recognition names a resident, their home landing and the landings they may reach; it can only narrow what a
  button press allows (the core applies floor permissions), so the worst a forged one could do is bounded by the
  landings that exist — and only the firmware's own user can send one at all.
"""

from __future__ import annotations

import datetime
import math
import re
from dataclasses import dataclass
from typing import Any

from carctl.core.signals import Commissioning, Mode, Recognition
from carctl.protocol import run_records

PLATFORM_MODES = {"normal": Mode.NORMAL, "out_of_service": Mode.OUT_OF_SERVICE, "independent": Mode.INDEPENDENT}
EVENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
ALARM_ID = re.compile(r"[0-9a-f]{32}")  # uuid4().hex: the id of one alarm, from requested to cancelled
RESIDENT_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # a resident id, here and in the gallery (carctl/face/gallery.py)
EVENT_CATEGORIES = ("faults_and_alarms", "running_state", "statistics")
MAX_EVENT_FIELDS = 32
MAX_STATE_FIELDS = 32
MAX_TEXT_CHARS = 256
MAX_COMMAND_ID_CHARS = 128  # as carctl/platform/commands.py allows
MAX_AUDIT_RECORD_CHARS = 4096  # audit_chain.MAX_LINE_BYTES
# Bounds of one day's statistics: a small residential lift makes a few hundred trips a day; these are far above
# anything real and far below anything that would corrupt the running totals.
MAX_DAILY_COUNT = 100_000
MAX_DAILY_RUNNING_S = 2 * 86_400.0  # a day, with room for a clock step at midnight
DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # [0-9], not \d: \d also takes other scripts' digits


# Every message carries the sender's CLOCK_MONOTONIC reading (sidechannel.Sender adds it): one clock for every
# process of the board, so a receiver can tell how long a message waited. A little slack for the clock read before
# the send and the receiver's read after it.
SENT_KEY = "sent_s"
CLOCK_SLACK_S = 0.05


def age_problem(value: Any, now_s: float, max_age_s: float) -> str | None:
    """Why a message is too old, unstamped, or claims to be from the future; None when it is fresh. Every sender of
    the firmware stamps its messages, so one without a stamp is not acted on either."""
    sent = value.get(SENT_KEY) if isinstance(value, dict) else None
    if sent is None:
        return "no sent_s"
    if not isinstance(sent, (int, float)) or isinstance(sent, bool) or not math.isfinite(sent):
        return "sent_s that is not a finite number"
    if sent > now_s + CLOCK_SLACK_S:
        return "sent_s in the future"
    if now_s - sent > max_age_s:
        return "waited longer than its maximum age"
    return None


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str


@dataclass(frozen=True, slots=True)
class ModeRequest:
    mode: Mode
    command: str = ""  # the platform command's id, for the maintenance record ("" when the link did not say)


@dataclass(frozen=True, slots=True)
class ReloadSettings:
    command: str = ""  # the id of the command that changed the settings ("" when the link did not say)


@dataclass(frozen=True, slots=True)
class AlarmAcknowledged:
    """The platform's operator has seen the car's alarm (a signed alarm.acknowledge): ``alarm_id`` names the alarm
    acknowledged ("" for whichever stands: an acknowledgement that named none)."""

    alarm_id: str = ""


@dataclass(frozen=True, slots=True)
class EventStored:
    event_id: str


@dataclass(frozen=True, slots=True)
class StateReport:
    state: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EventReport:
    event: dict[str, Any]


def _type_of(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    kind = value.get("type")
    return kind if isinstance(kind, str) else None


def _landing(value: Any, landing_count: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < landing_count


def _scalar(value: Any) -> bool:
    """A JSON leaf a report may carry: text of bounded length, a finite number, a bool, or null."""
    if isinstance(value, str):
        return len(value) <= MAX_TEXT_CHARS
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, (bool, int))


def _flat(value: Any) -> bool:
    """A scalar, or a short list of scalars (fault names, landings)."""
    if isinstance(value, list):
        return len(value) <= 64 and all(_scalar(item) for item in value)
    return _scalar(value)


# -- the loop, from the platform link --------------------------------------------------------------------------------

def parse_platform_message(value: Any) -> ModeRequest | ReloadSettings | EventStored | AlarmAcknowledged | Refused:
    kind = _type_of(value)
    if kind in ("mode", "reload"):
        command = value.get("command", "")
        if not isinstance(command, str) or len(command) > MAX_COMMAND_ID_CHARS or not command.isprintable():
            return Refused(f"{kind} with a command id that is not short printable text")
        if kind == "reload":
            return ReloadSettings(command)
        mode = value.get("mode")
        if isinstance(mode, str) and mode in PLATFORM_MODES:
            return ModeRequest(PLATFORM_MODES[mode], command)
        return Refused("mode not one the platform may request")
    if kind == "alarm_acknowledged":
        alarm_id = value.get("alarm", "")
        if alarm_id == "" or (isinstance(alarm_id, str) and ALARM_ID.fullmatch(alarm_id)):
            return AlarmAcknowledged(alarm_id)
        return Refused("alarm_acknowledged with an alarm id that is not one")
    if kind == "event_stored":
        event_id = value.get("id")
        if isinstance(event_id, str) and EVENT_ID.fullmatch(event_id):
            return EventStored(event_id)
        return Refused("event_stored without a valid id")
    return Refused("not a message for the loop from the platform link")


def mode_request(mode: str, command: str = "") -> dict[str, Any]:
    return {"type": "mode", "mode": mode, "command": command}


def reload_settings(command: str = "") -> dict[str, Any]:
    return {"type": "reload", "command": command}


def alarm_acknowledged(alarm_id: str = "") -> dict[str, Any]:
    return {"type": "alarm_acknowledged", "alarm": alarm_id} if alarm_id else {"type": "alarm_acknowledged"}


def event_stored(event_id: str) -> dict[str, Any]:
    return {"type": "event_stored", "id": event_id}


# -- the loop, from the face worker ----------------------------------------------------------------------------------

def parse_recognition(value: Any, landing_count: int) -> Recognition | Refused:
    if _type_of(value) != "recognition":
        return Refused("not a recognition")
    resident = value.get("resident")
    if not isinstance(resident, str) or not RESIDENT_ID.fullmatch(resident):
        return Refused("recognition without a valid resident id")
    home = value.get("home_landing")
    if not _landing(home, landing_count):
        return Refused("recognition with a home landing that does not exist")
    allowed = value.get("allowed_landings")
    if not isinstance(allowed, list) or len(allowed) > landing_count or not all(
            _landing(landing, landing_count) for landing in allowed):
        return Refused("recognition with allowed landings that do not exist")
    return Recognition(resident, home, frozenset(allowed), "face")


# -- the platform link, from the loop --------------------------------------------------------------------------------

def parse_loop_message(value: Any) -> StateReport | EventReport | Refused:
    kind = _type_of(value)
    if kind == "state":
        state = value.get("state")
        if isinstance(state, dict) and len(state) <= MAX_STATE_FIELDS and all(_flat(v) for v in state.values()):
            return StateReport(state)
        return Refused("state that is not a flat object")
    if kind == "event":
        event = value.get("event")
        problem = event_problem(event)
        if problem is not None:
            return Refused(problem)
        return EventReport(event)
    return Refused("not a message for the platform link from the loop")


def event_problem(event: Any) -> str | None:
    """Why an event from the loop cannot go to the outbox (None if it can). Daily statistics are checked field by
    field, since they are added to the car's running totals."""
    if not isinstance(event, dict) or len(event) > MAX_EVENT_FIELDS:
        return "event that is not a small object"
    event_id = event.get("id")
    if not isinstance(event_id, str) or not EVENT_ID.fullmatch(event_id):
        return "event without a valid id"
    if event.get("category") not in EVENT_CATEGORIES or not isinstance(event.get("kind"), str):
        return "event without a known category and a kind"
    if event.get("kind") == "audit":
        # The maintenance record's own line, so that the platform can check the chain: longer than other text.
        record = event.get("record")
        if not isinstance(record, str) or len(record) > MAX_AUDIT_RECORD_CHARS:
            return "audit event without its record"
        if not all(_flat(value) for key, value in event.items() if key != "record"):
            return "event with a field that is not a bounded scalar"
        return None
    if not all(_flat(value) for value in event.values()):
        return "event with a field that is not a bounded scalar"
    if event.get("kind") == "daily_statistics":
        return statistics_problem(event)
    return None


def statistics_problem(event: dict[str, Any]) -> str | None:
    if not isinstance(event.get("day"), str) or not DAY.fullmatch(event["day"]) or not _is_date(event["day"]):
        return "daily statistics without a day"
    for name in ("trips", "door_cycles", "faults_raised"):
        value = event.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_DAILY_COUNT:
            return f"daily statistics with an impossible {name}"
    for name, limit in (("running_s", MAX_DAILY_RUNNING_S), ("running_h", MAX_DAILY_RUNNING_S / 3600.0)):
        value = event.get(name)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= limit:
            return f"daily statistics with an impossible {name}"
    return None


def _is_date(text: str) -> bool:
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return True


# -- the alarm's modem process ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AlarmCall:
    """loop → modem process: whether the alarm's call is wanted now."""

    call: bool


@dataclass(frozen=True, slots=True)
class AlarmChannel:
    """modem process → loop: the call's state (transmitted: the rescue service answered; voice: connected now;
    dead: the module answers nothing), and whether the process holds the call wanted (``call``: a report made
    before it heard of a new alarm, or of a reset, says so and is not taken for the new one)."""

    call: bool
    transmitted: bool
    voice: bool
    dead: bool
    test: str = ""  # the last periodic test call: "", "ok" or "failed"
    tests: int = 0  # how many tests the process has made (a new one: a new result)


def alarm_call(call: bool) -> dict[str, Any]:
    return {"type": "alarm_call", "call": call}


def alarm_channel(call: bool, transmitted: bool, voice: bool, dead: bool, test: str = "",
                  tests: int = 0) -> dict[str, Any]:
    return {"type": "alarm_channel", "call": call, "transmitted": transmitted, "voice": voice, "dead": dead,
            "test": test, "tests": tests}


def parse_alarm_call(value: Any) -> AlarmCall | Refused:
    if _type_of(value) != "alarm_call" or set(value) - {"type", "call", SENT_KEY} or type(value.get("call")) is not bool:
        return Refused("not an alarm_call message")
    return AlarmCall(value["call"])


def parse_alarm_channel(value: Any) -> AlarmChannel | Refused:
    keys = ("call", "transmitted", "voice", "dead")
    if (_type_of(value) != "alarm_channel" or set(value) - {"type", *keys, "test", "tests", SENT_KEY}
            or any(type(value.get(key)) is not bool for key in keys)
            or value.get("test", "") not in ("", "ok", "failed")
            or type(value.get("tests", 0)) is not int or not 0 <= value.get("tests", 0) < 1 << 31):
        return Refused("not an alarm_channel message")
    return AlarmChannel(value["call"], value["transmitted"], value["voice"], value["dead"], value.get("test", ""),
                        value.get("tests", 0))


# -- the service tool (docs/service-tool.md) -------------------------------------------------------------------------

MAX_LIVE_FIELDS = 48
MAX_HEALTH_FIELDS = 64
MAX_EVENTS_PER_MESSAGE = 32


@dataclass(frozen=True, slots=True)
class WatchRequest:
    """service tool → loop: send me your live state for the next few seconds (a lease, renewed every second)."""


@dataclass(frozen=True, slots=True)
class LiveReport:
    live: dict[str, Any]


@dataclass(frozen=True, slots=True)
class HealthReport:
    health: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EventsReport:
    events: tuple[dict[str, Any], ...]


def watch_request() -> dict[str, Any]:
    return {"type": "watch"}


@dataclass(frozen=True, slots=True)
class ServiceAudit:
    """service tool → loop: a login, a logout or a change, for the maintenance record (docs/audit.md)."""

    action: str  # "login", "logout", or the path of a change
    user: str  # the account ("" when unknown)
    client: str  # where from
    outcome: str  # "ok", or "refused: why"


SERVICE_ACTION = re.compile(r"[a-z0-9/_-]{1,48}")
MAX_AUDIT_TEXT = 64


def service_audit(action: str, user: str, client: str, outcome: str) -> dict[str, Any]:
    """The record as parse_service_request takes it, whatever the texts (a login form's user name is anyone's)."""
    def printable(text: str) -> str:
        return "".join(char if char.isprintable() else "?" for char in text[:MAX_AUDIT_TEXT])

    return {"type": "audit", "action": re.sub(r"[^a-z0-9/_-]", "_", action.lower()[:48]) or "_",
            "user": printable(user), "client": printable(client), "outcome": printable(outcome)}


@dataclass(frozen=True, slots=True)
class ServiceReload:
    """service tool → loop: a maintenance account changed the settings file (platform.overrides_path, through
    runtime/overrides.py): apply it between two cycles, as for the platform's `reload`."""


def service_reload() -> dict[str, Any]:
    return {"type": "reload"}


def parse_service_request(value: Any) -> (WatchRequest | ServiceAudit | ServiceReload | ServiceCommission
                                          | run_records.RunsRequest | run_records.RunRequest | Refused):
    """What the loop takes from a service process: a watch request, a record for the maintenance record, a
    reload of the settings file, a commissioning request, or a question to the run recorder."""
    if _type_of(value) == "commission":
        return parse_commission(value)
    if _type_of(value) == "reload":
        if set(value) - {"type", SENT_KEY}:
            return Refused("reload with unknown keys")
        return ServiceReload()
    if _type_of(value) == "audit":
        if set(value) - {"type", "action", "user", "client", "outcome", SENT_KEY}:
            return Refused("audit with unknown keys")
        action, fields = value.get("action"), [value.get(key) for key in ("user", "client", "outcome")]
        if not isinstance(action, str) or not SERVICE_ACTION.fullmatch(action):
            return Refused("audit with an action that is not one")
        if not all(isinstance(text, str) and len(text) <= MAX_AUDIT_TEXT and text.isprintable() for text in fields):
            return Refused("audit with a field that is not short printable text")
        return ServiceAudit(action, *fields)
    if _type_of(value) in ("runs", "run"):
        request = run_records.parse_request(value)
        return Refused(request) if isinstance(request, str) else request
    return parse_watch(value)


def parse_watch(value: Any) -> WatchRequest | Refused:
    if _type_of(value) != "watch" or set(value) - {"type", SENT_KEY}:
        return Refused("not a watch request")
    return WatchRequest()


def _shallow(value: Any, levels: int = 2) -> bool:
    """A flat value, or a small object of them, at most ``levels`` deep (the health record's counters by reason,
    and a part's own record of them)."""
    if isinstance(value, dict):
        return levels > 0 and len(value) <= MAX_STATE_FIELDS and all(
            isinstance(key, str) and len(key) <= MAX_TEXT_CHARS and _shallow(item, levels - 1)
            for key, item in value.items())
    return _flat(value)


def parse_service_message(value: Any) -> (LiveReport | HealthReport | EventsReport | CommissionAnswer
                                          | run_records.RunsAnswer | run_records.RunAnswer | Refused):
    """What the service tool takes from the loop: its live state (flat), its health record (one level of counters
    by reason), the events of a cycle (small flat objects), the answer to a commissioning request."""
    kind = _type_of(value)
    if kind == "live":
        live = value.get("live")
        if isinstance(live, dict) and len(live) <= MAX_LIVE_FIELDS and all(_flat(v) for v in live.values()):
            return LiveReport(live)
        return Refused("live state that is not a flat object")
    if kind == "health":
        health = value.get("health")
        if isinstance(health, dict) and len(health) <= MAX_HEALTH_FIELDS and all(_shallow(v) for v in
                                                                                  health.values()):
            return HealthReport(health)
        return Refused("health that is not a shallow object")
    if kind == "commission":
        return parse_commission_answer(value)
    if kind == "events":
        events = value.get("events")
        if (isinstance(events, list) and len(events) <= MAX_EVENTS_PER_MESSAGE
                and all(isinstance(event, dict) and len(event) <= MAX_EVENT_FIELDS
                        and all(_flat(v) for v in event.values()) for event in events)):
            return EventsReport(tuple(events))
        return Refused("events that are not a short list of flat objects")
    if kind in ("runs", "run"):
        answer = run_records.parse_answer(value)
        return Refused(answer) if isinstance(answer, str) else answer
    return Refused("not a message for the service tool from the loop")


# -- commissioning from the service tool (docs/service-tool.md, "Commissioning") --------------------------------------
# The service tool asks; the loop passes the request to the core for one cycle (Inputs.commission), which applies the
# rules of the learn button, the brake test and the maintenance reset key; the loop answers with what the core did.

COMMISSION_ACTIONS = {request.value: request for request in Commissioning}
COMMISSION_ID = re.compile(r"[0-9a-f]{32}")  # uuid4().hex, made by the service tool for each request
# The core's reason for a refusal ("not_in_inspection"), or the faults a reset left latched: short words.
COMMISSION_REASON = re.compile(r"[a-z0-9_:.,-]{0,64}")
FAULT_NAME = re.compile(r"[a-z0-9_]{1,48}")
MAX_FAULTS_NAMED = 64


@dataclass(frozen=True, slots=True)
class ServiceCommission:
    """service tool → loop: a maintenance account asks for a learning run, a brake test or a reset of the latched
    faults. A request, nothing more: the core decides."""

    action: Commissioning
    request_id: str
    user: str  # the account, for the maintenance record


def commission_request(action: str, request_id: str, user: str) -> dict[str, Any]:
    return {"type": "commission", "action": action, "id": request_id, "user": user}


def parse_commission(value: Any) -> ServiceCommission | Refused:
    if _type_of(value) != "commission" or set(value) - {"type", "action", "id", "user", SENT_KEY}:
        return Refused("commission with unknown keys")
    action, request_id, user = value.get("action"), value.get("id"), value.get("user")
    if not isinstance(action, str) or action not in COMMISSION_ACTIONS:
        return Refused("commission with an action that is not one")
    if not isinstance(request_id, str) or not COMMISSION_ID.fullmatch(request_id):
        return Refused("commission without a request id")
    if not isinstance(user, str) or not 0 < len(user) <= MAX_AUDIT_TEXT or not user.isprintable():
        return Refused("commission without an account")
    return ServiceCommission(COMMISSION_ACTIONS[action], request_id, user)


@dataclass(frozen=True, slots=True)
class CommissionAnswer:
    """loop → service tool: what the core made of a commissioning request. ``accepted``: the run or test started, or
    the reset was made; otherwise ``reason`` is the core's ("not_in_inspection"). For a reset, the faults it cleared
    and those still latched (their condition is still there)."""

    request_id: str
    action: str
    accepted: bool
    reason: str = ""
    cleared: tuple[str, ...] = ()
    latched: tuple[str, ...] = ()


def commission_answer(request_id: str, action: str, accepted: bool, reason: str = "",
                      cleared: tuple[str, ...] = (), latched: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "commission", "id": request_id, "action": action,
            "outcome": "accepted" if accepted else "refused", "reason": reason[:64], "cleared": list(cleared),
            "latched": list(latched)}


def parse_commission_answer(value: Any) -> CommissionAnswer | Refused:
    if set(value) - {"type", "id", "action", "outcome", "reason", "cleared", "latched", SENT_KEY}:
        return Refused("commission answer with unknown keys")
    request_id, action, outcome, reason = (value.get(key) for key in ("id", "action", "outcome", "reason"))
    if not isinstance(request_id, str) or not COMMISSION_ID.fullmatch(request_id):
        return Refused("commission answer without a request id")
    if not isinstance(action, str) or action not in COMMISSION_ACTIONS or outcome not in ("accepted", "refused"):
        return Refused("commission answer with an action or outcome that is not one")
    if not isinstance(reason, str) or not COMMISSION_REASON.fullmatch(reason):
        return Refused("commission answer with a reason that is not one")
    named = [value.get("cleared"), value.get("latched")]
    if not all(isinstance(faults, list) and len(faults) <= MAX_FAULTS_NAMED
               and all(isinstance(name, str) and FAULT_NAME.fullmatch(name) for name in faults) for faults in named):
        return Refused("commission answer with faults that are not fault names")
    return CommissionAnswer(request_id, action, outcome == "accepted", reason, tuple(named[0]), tuple(named[1]))
