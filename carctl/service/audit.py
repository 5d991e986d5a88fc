"""Where the service tool records who logged in and what they changed.

Every record goes to the firmware's structured log (JSON lines on stderr: the journal under systemd) and to the
loop, which chains it into the car's maintenance record (docs/audit.md) as the service tool's, with the account and
the client, and sends it to the platform. Everything that records calls `AuditTrail.record`.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from carctl.protocol.loopback import service_audit
from carctl.runtime.sidechannel import Sender
from carctl.runtime.structlog import StructuredLog


class AuditTrail(Protocol):
    def record(self, action: str, user: str, client: str, outcome: str, **details: Any) -> None:
        """One login, logout or change: who (the account, "" when unknown), from where, and how it ended."""
        ...


class StructuredLogAudit:
    """Audit records as `audit` lines of the structured log, and, given a way to the loop, in the maintenance
    record."""

    def __init__(self, log: StructuredLog, to_loop: Sender | None = None) -> None:
        self.log = log
        self.to_loop = to_loop

    def record(self, action: str, user: str, client: str, outcome: str, **details: Any) -> None:
        self.log.write("audit", t=round(time.time(), 3), action=action, user=user[:64], client=client[:64],
                       outcome=outcome, **details)
        if self.to_loop is not None:
            self.to_loop.send(service_audit(action.lower(), user, client, outcome))
