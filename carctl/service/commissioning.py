"""The Commissioning page (docs/service-tool.md): start the learning run and the brake test, reset the latched
faults, and follow their progress.

Rules of this module:
- Reading the page needs a session; the three actions are POST forms that need the session's CSRF token (the same
  path as every change, app.py) and a `maintenance` account: otherwise 403, nothing is sent, the attempt recorded.
- An action is a request, nothing more: `commission` over the side channel to the loop (protocol/loopback.py),
  which passes it to the core for one cycle; the core applies the rules of the cabinet's learn button, the brake
  test and the maintenance reset key and answers. The page waits at most ANSWER_WAIT_S for the answer (the loop acts
  on no request older than a second: runtime/service_feed.py) and shows the core's reason as a sentence (REASONS).
- Every attempt goes to the audit trail with the form's path and its outcome; the loop records what the core did
  (learning_run, brake_test, fault_reset, via service_tool).
- Progress is the loop's live state (learning_found, learning_last, brake_test, brake_test_last, latched_faults),
  drawn by static/commissioning.js from the live stream; the sentences are this module's (REASONS, OUTCOMES), handed
  to the script with the page.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from carctl.protocol.loopback import COMMISSION_ID, CommissionAnswer, commission_request

ANSWER_WAIT_S = 2.0
ANSWER_POLL_S = 0.05
# The page's three actions: the form's path and the request's action, and what the page calls it.
ACTIONS = {"learn": "the learning run", "brake_test": "the brake test", "reset_faults": "the reset"}

# The core's reasons (core/learning.py, core/braketest.py), and the outcomes of a run or test, as the page says them.
REASONS: dict[str, str] = {
    "not_in_inspection": "the car is not in inspection: turn the car-top inspection switch on first",
    "under_way": "one is already under way",
    "car_moving": "the car is moving (or an inspection button is held): let it stand",
    "fault": "a fault holds the car: see the fault log, and reset it once its cause is gone",
    "doors_not_locked": "the doors are not closed and locked",
    "position_unreferenced": "the car's position is not referenced: a correction run is due first",
    "car_top_silent": "the car-top board does not answer",
    "not_at_bottom": "the car is not standing level with the bottom landing: bring it down on the cabinet's "
                     "down button first",
    "car_top_inspection": "the car-top inspection switch is on: a mechanic may be on the roof, and the cabinet never "
                          "moves him; get off the roof and turn it off",
    "not_in_emergency_electrical": "the learning run starts only in emergency electrical operation: the cabinet's "
                                   "EEO switch on, the car-top inspection switch off",
    "calls": "calls are waiting",
    "car_occupied": "someone is in or on the car (the load cell reads a load): the car must be empty",
    "drive_silent": "the drive does not answer",
    "not_idle": "the car is not idle",
    "not_taken": "the controller did not take the request",
    "vane_count": "the run found a different number of vanes from the landings configured",
    "vanes_too_close": "two vanes are closer than landings can be",
    "bottom_off_zero": "the bottom landing is off the count's zero: correct the reference mark in the drive",
    "mode": "the mode changed",
    "doors": "the doors opened",
    "timeout": "the run took longer than a whole shaft at inspection speed",
}
OUTCOMES: dict[str, str] = {
    "started": "started",
    "no_answer": "the drive did not answer the test request (CONTROL bit4): check its brake test parameters",
    "abandoned": "abandoned: the car did not stay idle (a button, the doors, a load, a mode)",
}

Page = Callable[..., Response]
SessionOf = Callable[[Request], Any]
RefuseChange = Callable[[Request, Any], Awaitable[Response | None]]


def answer_sentence(answer: CommissionAnswer | None) -> tuple[bool, str]:
    """(accepted, the sentence) for the loop's answer; None: it did not come."""
    if answer is None:
        return False, (f"The car did not answer within {ANSWER_WAIT_S:.0f} s: nothing was done (is carctl run "
                       "running, with processes.service on?).")
    what = ACTIONS.get(answer.action, answer.action)
    if answer.action == "reset_faults":
        cleared = ", ".join(answer.cleared) or "nothing"
        text = f"Reset made: cleared {cleared}."
        if answer.latched:
            text += f" Still latched, their condition still present: {', '.join(answer.latched)}."
        return True, text
    if answer.accepted:
        return True, f"Accepted: {what} started."
    return False, f"Refused: {what} cannot start now: {REASONS.get(answer.reason, answer.reason.replace('_', ' '))}."


def routes(state: Any, page: Page, session_of: SessionOf, refuse_change: RefuseChange,
           client_of: Callable[[Request], str]) -> list[Route]:
    """The page and its three actions, with the application's own session, page and CSRF helpers (app.py)."""

    async def commissioning_page(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return RedirectResponse("/login", 303)
        answer_id = request.query_params.get("answer", "")
        answered: tuple[bool, str] | None = None
        if COMMISSION_ID.fullmatch(answer_id):
            feed = state.feed
            answered = answer_sentence(feed.answers.get(answer_id) if feed is not None else None)
        return page(request, "commissioning.html", session, answered=answered, actions=ACTIONS,
                    landings=len(state.settings.landings_m), reasons={**REASONS, **OUTCOMES})

    async def commission(request: Request) -> Response:
        session = session_of(request)
        refusal = await refuse_change(request, session)
        if refusal is not None:
            return refusal
        action, path, client = request.path_params["action"], request.url.path, client_of(request)
        if action not in ACTIONS:
            state.audit.record("/commissioning", session.user, client, "refused: no such action")
            return PlainTextResponse("No such action.\n", 404)
        if not session.may_change:
            state.audit.record(path, session.user, client, "refused: read-only account")
            return PlainTextResponse("Refused: a read-only account cannot commission the car.\n", 403)
        feed = state.feed
        request_id = uuid.uuid4().hex
        answer = None
        if feed is not None:
            feed.to_loop.send(commission_request(action, request_id, session.user))
            waited_s = 0.0
            while request_id not in feed.answers and waited_s < ANSWER_WAIT_S:
                await asyncio.sleep(ANSWER_POLL_S)  # the loop's answer arrives on the feed's reader meanwhile
                waited_s += ANSWER_POLL_S
            answer = feed.answers.get(request_id)
        accepted, said = answer_sentence(answer)
        state.audit.record(path, session.user, client, "ok" if accepted else f"refused: {_short(said)}")
        return RedirectResponse(f"/commissioning?answer={request_id}", 303)

    return [Route("/commissioning", commissioning_page, methods=["GET"]),
            Route("/commissioning/{action}", commission, methods=["POST"])]


def _short(text: str) -> str:
    """A sentence for the audit record's outcome (at most 64 printable characters go to the loop)."""
    return re.sub(r"\s+", " ", text.removeprefix("Refused: "))[:54]


__all__ = ["ACTIONS", "ANSWER_WAIT_S", "OUTCOMES", "REASONS", "answer_sentence", "routes"]
