"""A run's curves drawn as SVG on the server (the Run recorder page): no plotting library, no script in the browser.

Rules of this module:
- Only numbers from a parsed run (protocol/run_records.py) and this module's own fixed words go into the drawing:
  nothing in it comes from outside as text, so it is safe to put in the page as it is.
- One plot per curve, sharing the time axis: position (with the heights of the landings it passed), speed, and the
  doors (closed, moving, open, and whether the lock read made). A viewBox, no fixed size: a phone shows the whole
  run across its width.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from carctl.protocol.run_records import DOOR_LOCKED, DOOR_PHASES, RunCurves

WIDTH = 400
HEIGHT = 150
LEFT = 44  # room for the value labels
RIGHT = 8
TOP = 16  # room for the title
BOTTOM = 22  # room for the time labels
_DOOR_LEVEL = {"closed": 0.0, "opening": 0.5, "closing": 0.5, "open": 1.0}


def _nice_step(span: float, count: int = 4) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about ``count`` gridlines over ``span``."""
    raw = max(span, 1e-9) / count
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * power >= raw:
            return factor * power
    return 10 * power


def _ticks(low: float, high: float) -> list[float]:
    step = _nice_step(high - low)
    first = math.ceil(low / step - 1e-9) * step
    return [first + index * step for index in range(int((high - first) / step + 1e-9) + 1)]


def _label(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


class _Frame:
    """Maps time and value onto the plot's area."""

    def __init__(self, duration_s: float, low: float, high: float) -> None:
        if high - low < 1e-6:
            low, high = low - 0.5, high + 0.5
        self.duration_s = max(duration_s, 1e-3)
        self.low, self.high = low, high

    def x(self, t_s: float) -> float:
        return round(LEFT + (WIDTH - LEFT - RIGHT) * t_s / self.duration_s, 1)

    def y(self, value: float) -> float:
        return round(TOP + (HEIGHT - TOP - BOTTOM) * (self.high - value) / (self.high - self.low), 1)


def _svg(plot_id: str, title: str, frame: _Frame, y_ticks: Sequence[tuple[float, str]], body: list[str]) -> str:
    parts = [f'<svg id="{plot_id}" class="run-plot" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="{title}" xmlns="http://www.w3.org/2000/svg">',
             f'<rect class="plot-area" x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" '
             f'height="{HEIGHT - TOP - BOTTOM}"/>']
    for value, text in y_ticks:
        y = frame.y(value)
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}"/>'
                     f'<text class="axis" x="{LEFT - 3}" y="{y + 3}" text-anchor="end">{text}</text>')
    for t_s in _ticks(0.0, frame.duration_s):
        x = frame.x(t_s)
        parts.append(f'<line class="grid" x1="{x}" y1="{TOP}" x2="{x}" y2="{HEIGHT - BOTTOM}"/>'
                     f'<text class="axis" x="{x}" y="{HEIGHT - BOTTOM + 12}" text-anchor="middle">'
                     f'{_label(t_s)}</text>')
    parts.append(f'<text class="axis" x="{WIDTH - RIGHT}" y="{HEIGHT - 1}" text-anchor="end">s</text>')
    parts.append(f'<text class="plot-title" x="{LEFT}" y="{TOP - 4}">{title}</text>')
    parts.extend(body)
    parts.append("</svg>")
    return "".join(parts)


def _polyline(css: str, points: list[tuple[float, float]]) -> str:
    return f'<polyline class="{css}" points="{" ".join(f"{x},{y}" for x, y in points)}"/>'


def _duration_s(curves: RunCurves) -> float:
    return max(len(curves.position_mm) - 1, 1) * curves.every_s


def position_plot(curves: RunCurves, landings_m: Sequence[float]) -> str:
    metres = [mm / 1000.0 for mm in curves.position_mm] or [0.0]
    low, high = min(metres), max(metres)
    margin = max(0.05, 0.05 * (high - low))
    frame = _Frame(_duration_s(curves), low - margin, high + margin)
    body = []
    for index, height_m in enumerate(landings_m):
        if frame.low <= height_m <= frame.high:
            y = frame.y(height_m)
            body.append(f'<line class="landing-level" x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}"/>'
                        f'<text class="axis landing-name" x="{WIDTH - RIGHT - 2}" y="{y - 2}" '
                        f'text-anchor="end">landing {index}</text>')
    body.append(_polyline("curve position", [(frame.x(i * curves.every_s), frame.y(m)) for i, m in enumerate(metres)]))
    ticks = [(value, _label(value)) for value in _ticks(frame.low, frame.high)]
    return _svg("plot-position", "position, m", frame, ticks, body)


def speed_plot(curves: RunCurves) -> str:
    speeds = [mm_s / 1000.0 for mm_s in curves.speed_mm_s] or [0.0]
    low, high = min(0.0, min(speeds)), max(0.0, max(speeds))
    margin = max(0.05, 0.05 * (high - low))
    frame = _Frame(_duration_s(curves), low - margin, high + margin)
    body = [_polyline("curve speed", [(frame.x(i * curves.every_s), frame.y(v)) for i, v in enumerate(speeds)])]
    ticks = [(value, _label(value)) for value in _ticks(frame.low, frame.high)]
    return _svg("plot-speed", "speed, m/s (up +)", frame, ticks, body)


def door_plot(curves: RunCurves) -> str:
    frame = _Frame(_duration_s(curves), -0.25, 1.1)
    points: list[tuple[float, float]] = []
    locked: list[str] = []
    lock_from: float | None = None
    for index, code in enumerate(curves.door):
        x = frame.x(index * curves.every_s)
        y = frame.y(_DOOR_LEVEL[DOOR_PHASES[code & 7]])
        if points and points[-1][1] != y:
            points.append((x, points[-1][1]))  # a step: the doors keep their state until the next sample
        points.append((x, y))
        is_locked = bool(code & DOOR_LOCKED)
        if is_locked and lock_from is None:
            lock_from = x
        elif not is_locked and lock_from is not None:
            locked.append(_lock_bar(frame, lock_from, x))
            lock_from = None
    if lock_from is not None:
        locked.append(_lock_bar(frame, lock_from, frame.x(frame.duration_s)))
    body = [*locked, _polyline("curve door", points)] if points else locked
    body.append(f'<text class="axis lock-name" x="{WIDTH - RIGHT - 2}" y="{frame.y(-0.25) - 3}" '
                f'text-anchor="end">locked</text>')
    ticks = [(0.0, "closed"), (0.5, "moving"), (1.0, "open")]
    return _svg("plot-door", "doors", frame, ticks, body)


def _lock_bar(frame: _Frame, x_from: float, x_to: float) -> str:
    top = frame.y(-0.1)
    return (f'<rect class="locked" x="{x_from}" y="{top}" width="{round(max(x_to - x_from, 1.0), 1)}" '
            f'height="{round(frame.y(-0.25) - top, 1)}"/>')
