"""uvicorn's h11 protocol with a deadline for every request's head.

uvicorn closes a connection that stays idle after a response (its keep-alive timeout), but not one that was opened
and then sends nothing, or a head a byte at a time: 32 such connections (the server's limit) would deny the page to
everyone else for as long as the client likes. Here a request's head must be complete within HEAD_DEADLINE_S of the
connection opening, or of the previous response's end; otherwise the connection is closed. The body is bounded by
size elsewhere (app.py), and a live stream, once its head has arrived, runs as long as its session.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol

HEAD_DEADLINE_S = 10.0


class HeadDeadlineH11Protocol(H11Protocol):
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def _arm_head_deadline(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        # The request being answered now (None before the first): a new head makes a new one.
        waiting_after = self.cycle
        self._head_timer = self.loop.call_later(HEAD_DEADLINE_S, self._head_overdue, waiting_after)

    def _head_overdue(self, waiting_after: object) -> None:
        self._head_timer = None
        if self.cycle is waiting_after and not self.transport.is_closing():
            self.transport.close()
