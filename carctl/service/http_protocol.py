"""uvicorn's h11 protocol with a deadline for every request's head, and a share of the connections for each client.

uvicorn closes a connection that stays idle after a response (its keep-alive timeout), but not one that was opened
and then sends nothing, or a head a byte at a time: 32 such connections (the server's limit) would deny the page to
everyone else for as long as the client likes. Here a request's head must be complete within HEAD_DEADLINE_S of the
connection opening, or of the previous response's end; otherwise the connection is closed. The body is bounded by
size elsewhere (app.py), and a live stream, once its head has arrived, runs as long as its session.

The deadline alone still let one client hold them all, 10 s at a time, again and again: the server's 32 are for
everyone (uvicorn answers 503 past them), so one client address may hold at most MAX_CONNECTIONS_PER_CLIENT (a
browser opens six, and a live stream for each open page); a connection past that is closed as soon as it is made.

A request whose body turns out malformed (a chunk that is not one) is answered 400 by uvicorn, which closes the
connection; the application, already answering, is told the client has gone, so that its own answer is dropped
quietly instead of raising in h11 (a traceback in the journal for every such request).
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol

HEAD_DEADLINE_S = 10.0
MAX_CONNECTIONS_PER_CLIENT = 12


class HeadDeadlineH11Protocol(H11Protocol):
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        host = self.client[0] if self.client else None
        if host is not None and sum(1 for other in self.connections
                                    if other.client and other.client[0] == host) > MAX_CONNECTIONS_PER_CLIENT:
            transport.close()  # (connection_lost follows, and takes it out of the server's connections)
            return
        self._arm_head_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        super().send_400_response(msg)
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the connection is closing: nothing more may be written on it
            self.cycle.message_event.set()

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
