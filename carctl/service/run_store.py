"""The service tool's copy of the loop's run recorder (runtime/run_recorder.py): what the Run recorder page shows.

Rules of this module:
- Asked, not pushed: the page asks for the list (`runs`) and for the run it shows (`run`); each question has an
  `ask` number the loop's answer repeats. Pages that load at once share one question: the list is asked at most
  every ASK_EVERY_S, the same run likewise.
- Kept: the summaries of the ids the loop's ring holds now (as its latest answer says, at most MAX_RUNS), and the
  curves of the last CURVES_KEPT runs looked at (a finished run's curves never change). Answers from another start
  of the loop (`boot`) clear everything first.
- Everything here was parsed by protocol/run_records.py before it arrives.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from typing import Any

from carctl.protocol.run_records import MAX_ID, MAX_RUNS, RunAnswer, RunCurves, RunsAnswer, RunSummary, \
    run_request, runs_request

ASK_EVERY_S = 0.5
CURVES_KEPT = 4
MISSING_KEPT = 16


class RunStore:
    def __init__(self, send: Callable[[dict[str, Any]], Any], clock: Callable[[], float] = time.monotonic) -> None:
        self.send = send
        self.clock = clock
        self.boot = ""
        self.oldest = 0
        self.newest = -1
        self.summaries: dict[int, RunSummary] = {}
        self.curves: collections.OrderedDict[int, tuple[RunSummary, RunCurves]] = collections.OrderedDict()
        self.missing: collections.OrderedDict[int, None] = collections.OrderedDict()  # ids the loop no longer has
        self.list_answered = -1  # the latest ask the list's answer repeated
        self.next_ask = 0
        self._list_asked: tuple[int, float] | None = None
        self._run_asked: dict[int, tuple[int, float]] = {}

    def _ask(self) -> int:
        ask, self.next_ask = self.next_ask, (self.next_ask + 1) % (MAX_ID + 1)
        return ask

    def ask_list(self) -> int:
        """Ask the loop for the list unless it was asked moments ago; the ask number to wait for."""
        now = self.clock()
        if self._list_asked is not None and now - self._list_asked[1] < ASK_EVERY_S:
            return self._list_asked[0]
        ask = self._ask()
        self._list_asked = (ask, now)
        self.send(runs_request(ask))
        return ask

    def list_ready(self, ask: int) -> bool:
        """The answer to ``ask`` (or a later one) has come, with every summary the ring holds."""
        held = max(0, min(MAX_RUNS, self.newest - self.oldest + 1))
        return self.list_answered >= ask and len(self.summaries) >= held

    def ask_run(self, run_id: int) -> None:
        if run_id in self.curves or run_id in self.missing:
            return
        now = self.clock()
        asked = self._run_asked.get(run_id)
        if asked is not None and now - asked[1] < ASK_EVERY_S:
            return
        if len(self._run_asked) >= MAX_RUNS:
            self._run_asked.clear()
        self._run_asked[run_id] = (self._ask(), now)
        self.send(run_request(self._run_asked[run_id][0], run_id))

    def run(self, run_id: int) -> tuple[RunSummary, RunCurves] | None:
        found = self.curves.get(run_id)
        if found is not None:
            self.curves.move_to_end(run_id)
        return found

    def newest_first(self) -> list[RunSummary]:
        return [self.summaries[run_id] for run_id in sorted(self.summaries, reverse=True)]

    def take(self, answer: RunsAnswer | RunAnswer) -> None:
        if answer.boot != self.boot:  # another start of the loop: its ids name other runs
            self.boot = answer.boot
            self.summaries.clear()
            self.curves.clear()
            self.missing.clear()
            self._run_asked.clear()
        if isinstance(answer, RunsAnswer):
            self.oldest, self.newest = answer.oldest, answer.newest
            for run_id in [run_id for run_id in self.summaries if not self.oldest <= run_id <= self.newest]:
                del self.summaries[run_id]
            for summary in answer.runs:
                if self.oldest <= summary.id <= self.newest:
                    self.summaries[summary.id] = summary
            while len(self.summaries) > MAX_RUNS:  # the ring's bound, whatever the answers say
                del self.summaries[min(self.summaries)]
            self.list_answered = max(self.list_answered, answer.ask)
            return
        self._run_asked.pop(answer.run_id, None)
        if answer.summary is None or answer.curves is None:
            self.missing[answer.run_id] = None
            while len(self.missing) > MISSING_KEPT:
                self.missing.popitem(last=False)
            return
        self.curves[answer.run_id] = (answer.summary, answer.curves)
        while len(self.curves) > CURVES_KEPT:
            self.curves.popitem(last=False)
