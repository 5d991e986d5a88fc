"""Where the service tool records who logged in and what they changed.

The car's audit log is coming (issue 17); until then every record goes to the firmware's structured log (JSON
lines on stderr: the journal under systemd). Everything that records calls `AuditTrail.record`, so pointing it at the
audit log is one class, not a search through the handlers.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from carctl.runtime.structlog import StructuredLog


class AuditTrail(Protocol):
    def record(self, action: str, user: str, client: str, outcome: str, **details: Any) -> None:
        """One login, logout or change: who (the account, "" when unknown), from where, and how it ended."""
        ...


class StructuredLogAudit:
    """Audit records as `audit` lines of the structured log."""

    def __init__(self, log: StructuredLog) -> None:
        self.log = log

    def record(self, action: str, user: str, client: str, outcome: str, **details: Any) -> None:
        self.log.write("audit", t=round(time.time(), 3), action=action, user=user[:64], client=client[:64],
                       outcome=outcome, **details)
