"""Learned landing tables on disk that are sound JSON with a matching checksum, yet not one a learning run of this
shaft could have written (carctl/runtime/learned_table.py). The checksum is no secret (docs/modes.md gives its
recipe), and a file copied from another car, or restored from the wrong backup, carries a good one."""

from __future__ import annotations

from pathlib import Path

import pytest

from carctl.core.config import ControllerConfig
from carctl.core.learned import LearnedTable
from carctl.runtime.learned_table import startup, write

WHEN = "2026-12-02T21:50:00Z"


def table(landings_m: tuple[float, ...]) -> LearnedTable:
    edges = [(None, landings_m[0] + 0.2)] + [(height - 0.2, height + 0.2) for height in landings_m[1:-1]]
    return LearnedTable(landings_m=landings_m, vane_edges_m=tuple(edges + [(landings_m[-1] - 0.2, None)]))


@pytest.mark.parametrize(("landings_m", "why"), [
    # The next stairwell's car: six landings 3.3 m apart. docs/modes.md: a record "for another building is refused";
    # only the count is compared, so the car here takes a top landing 2 m above its own top (its final limit and
    # terminal speed limit judged there) and levels 0.4 m to 2 m off every sill.
    ((0.0, 3.3, 6.6, 9.9, 13.2, 16.5), "another building with as many landings"),
    # The bottom landing is the count's zero (the reference mark): the run refuses a bottom more than 20 mm off it
    # (bottom_off_zero), but a file is taken with its bottom at 0.5 m, so the car standing at the reference mark
    # is beyond the bottom final limit (shaft_limit, latched) and levels 0.5 m above every sill.
    ((0.5, 3.4, 6.3, 9.2, 12.1, 15.0), "a bottom landing away from the count's zero"),
])
def test_a_table_this_shaft_cannot_have_learned_is_refused_at_start(tmp_path: Path, landings_m: tuple[float, ...],
                                                                    why: str) -> None:
    path = tmp_path / "learned_landings.json"
    write(path, table(landings_m), WHEN)
    config, source, problem = startup(ControllerConfig(), str(path))
    assert source == "typed" and problem, (why, config.building.landings_m)
    assert config.building.landings_m == ControllerConfig().building.landings_m, why
