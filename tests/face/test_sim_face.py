"""`carctl sim --face`: the car camera shows boarding residents' real photos to the real recogniser."""

from __future__ import annotations

import pytest

from sim.camera import SimulatedCamera
from sim.lockstep import Lockstep
from sim.scenario import from_dict


@pytest.mark.slow
def test_residents_coming_home_are_recognised_and_taken_home() -> None:
    scenario = from_dict({"traffic": {"pattern": "up_peak", "rate_pct_per_5min": 30.0, "duration_s": 1800.0,
                                      "seed": 4}})
    camera = SimulatedCamera(scenario.controller.building.landing_count, seed=4)
    report = Lockstep(scenario, camera=camera).run()
    face = report["face"]
    assert face["residents_seen"] >= 10
    assert face["wrong_person"] == 0
    assert face["visitors_accepted"] == 0
    assert face["residents_missed"] <= 0.05 * face["residents_seen"]
    assert face["rides_started_by_face"] >= 0.9 * face["residents_seen"]
    assert report["passengers_served"] == report["passengers_generated"]
    assert report["safety_violations"] == 0


def test_without_face_the_report_has_no_face_section() -> None:
    report = Lockstep(from_dict({"traffic": {"duration_s": 300.0}})).run()
    assert "face" not in report
