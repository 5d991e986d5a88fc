"""Where the service tool records who logged in and what they changed.

Every record goes to the firmware's structured log (JSON lines on stderr: the journal under systemd) and to the
loop, which chains it into the car's maintenance record (docs/audit.md) as the service tool's, with the account and
the client, and sends it to the platform. Everything that records calls `AuditTrail.record`.

Refusals reach the maintenance record at most REFUSALS_PER_WINDOW in REFUSAL_WINDOW_S: anyone who reaches the page
can make one (a login without its form token costs nothing to send), and the record on the card is rotated at its
size (runtime.audit_log_max_bytes), so a flood of them would push the car's history off the card. Past the budget
they are counted, not sent; the first record of a later window is preceded by one saying how many were left out.
The structured log keeps every one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from carctl.protocol.loopback import service_audit
from carctl.runtime.sidechannel import Sender
from carctl.runtime.structlog import StructuredLog

REFUSALS_PER_WINDOW = 20
REFUSAL_WINDOW_S = 60.0
LEFT_OUT_ACTION = "refusals_left_out"


class AuditTrail(Protocol):
    def record(self, action: str, user: str, client: str, outcome: str, **details: Any) -> None:
        """One login, logout or change: who (the account, "" when unknown), from where, and how it ended."""
        ...


class StructuredLogAudit:
    """Audit records as `audit` lines of the structured log, and, given a way to the loop, in the maintenance
    record (refusals within their budget)."""

    def __init__(self, log: StructuredLog, to_loop: Sender | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.log = log
        self.to_loop = to_loop
        self.clock = clock
        self.window_ends_s = float("-inf")
        self.refusals_sent = 0  # in this window
        self.refusals_left_out = 0  # since the last record that said how many

    def record(self, action: str, user: str, client: str, outcome: str, **details: Any) -> None:
        self.log.write("audit", t=round(time.time(), 3), action=action, user=user[:64], client=client[:64],
                       outcome=outcome, **details)
        if self.to_loop is None:
            return
        now = self.clock()
        if now >= self.window_ends_s:
            self.window_ends_s, self.refusals_sent = now + REFUSAL_WINDOW_S, 0
            if self.refusals_left_out:
                self.to_loop.send(service_audit(LEFT_OUT_ACTION, "", "", f"refused: {self.refusals_left_out} "
                                                                         f"more, left out (see the journal)"))
                self.refusals_left_out = 0
        if outcome.startswith("refused"):
            if self.refusals_sent >= REFUSALS_PER_WINDOW:
                self.refusals_left_out += 1
                return
            self.refusals_sent += 1
        self.to_loop.send(service_audit(action.lower(), user, client, outcome))
