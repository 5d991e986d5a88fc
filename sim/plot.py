"""A picture of a run: car position, speed and door state against time, and the distribution of waiting times."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_run(trace: list[dict[str, Any]], waits_s: list[float], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = [record["t_s"] for record in trace]
    figure, axes = plt.subplots(4, 1, figsize=(11, 10), gridspec_kw={"height_ratios": [3, 2, 1, 2]})
    position, speed, doors, waits = axes
    position.plot(times, [record["position_m"] for record in trace], linewidth=0.8)
    position.set_ylabel("position (m)")
    position.set_title(f"carctl sim — {title}")
    speed.plot(times, [record["speed_m_s"] for record in trace], linewidth=0.8, color="tab:orange")
    speed.set_ylabel("speed (m/s)")
    doors.fill_between(times, [record["door_open_fraction"] for record in trace], step="post", color="tab:green")
    doors.set_ylabel("door open")
    doors.set_xlabel("time (s)")
    doors.set_ylim(0, 1.05)
    for axis in (position, speed):
        axis.sharex(doors)
        axis.grid(True, alpha=0.3)
    waits.hist(waits_s or [0.0], bins=30, color="tab:purple")
    waits.set_xlabel("waiting time (s)")
    waits.set_ylabel("passengers")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
