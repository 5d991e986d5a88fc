"""The Run recorder page (`/runs`, every role): the loop's last runs, newest first, and one run's curves as SVG.

Rules of this module:
- Read only, like the live page: the runs come from the loop over the side channel when the page asks
  (run_store.py); the page waits for the answer at most ANSWER_WAIT_S and says so when none came.
- The query's one parameter, `run`, is a run id (digits, at most MAX_RUN_DIGITS): anything else is a 400 with a
  sentence, and the page shows the newest run.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable, Sequence
from typing import Any

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from carctl.protocol.run_records import MAX_ID, RunSummary
from carctl.service import run_plots
from carctl.service.feed import LoopFeed

ANSWER_WAIT_S = 1.0
POLL_S = 0.02
MAX_RUN_DIGITS = 10
END_NAMES = {"doors_open": "doors opened", "stopped": "stopped, doors stayed closed",
             "halted": "halted by a fault", "cut": "cut: longer than the recorder keeps"}


def chosen_run(text: str) -> tuple[int | None, str]:
    """The run id asked for in the query (None: the newest), or a sentence saying why the text is not one."""
    if text == "":
        return None, ""
    if len(text) > MAX_RUN_DIGITS or not text.isascii() or not text.isdigit() or int(text) > MAX_ID:
        return None, "run must be a run's number, as listed below"
    return int(text), ""


def described(summary: RunSummary) -> dict[str, Any]:
    """A summary as the page shows it."""
    def landing(index: int) -> str:
        return str(index) if index >= 0 else "between landings"

    return {
        "id": summary.id,
        "kind": summary.kind,
        "start": datetime.datetime.fromtimestamp(summary.start_utc_s, datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M:%S UTC"),
        "route": f"{landing(summary.from_landing)} → {landing(summary.to_landing)}",
        "duration": f"{summary.duration_s:.1f} s",
        "peak": f"{summary.peak_speed_m_s:.2f} m/s",
        "level": "unknown" if summary.levelling_error_mm is None else f"{summary.levelling_error_mm:+.0f} mm",
        "end": END_NAMES.get(summary.end, summary.end),
        "faults": ", ".join(summary.faults) or "none",
    }


async def _wait(ready: Callable[[], bool]) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ANSWER_WAIT_S
    while not ready():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(POLL_S)
    return True


def make_runs_page(feed: LoopFeed | None, landings_m: Sequence[float], session_of: Callable[[Request], Any],
                   page: Callable[..., Response]) -> Callable[[Request], Any]:
    async def runs_page(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return RedirectResponse("/login", 303)
        chosen, problem = chosen_run(request.query_params.get("run", ""))
        note = ""
        runs: list[RunSummary] = []
        shown: dict[str, Any] | None = None
        plots: list[Markup] = []
        if feed is None or feed.stale():
            note = "No answer from the control loop: is carctl run running, with processes.service on?"
        else:
            store = feed.runs
            ask = store.ask_list()
            if not await _wait(lambda: store.list_ready(ask)):
                note = "The control loop did not answer in time: the list may be incomplete. Reload the page."
            runs = store.newest_first()
            if chosen is None and runs:
                chosen = runs[0].id
            if chosen is not None:
                store.ask_run(chosen)
                wanted = chosen
                if await _wait(lambda: store.run(wanted) is not None or wanted in store.missing):
                    found = store.run(chosen)
                    if found is None:
                        note = f"Run {chosen} is no longer kept by the car (it keeps the last 50)."
                    else:
                        summary, curves = found
                        shown = described(summary)
                        # Made here from parsed numbers and fixed words only (run_plots.py): safe as it is.
                        plots = [Markup(run_plots.position_plot(curves, landings_m)),
                                 Markup(run_plots.speed_plot(curves)), Markup(run_plots.door_plot(curves))]
                else:
                    note = f"The control loop did not send run {chosen} in time. Reload the page."
        return page(request, "runs.html", session, 400 if problem else 200, runs=[described(s) for s in runs],
                    shown=shown, plots=plots, problem=problem, note=note)

    return runs_page
