"""The simulated car camera: as a passenger boards, it shows their photo to the real recogniser.

Rules of this module:
- Residents are the people in tests/data/faces. Each enrolled one has a home landing, is enrolled from their first
  photo(s) and is shown to the camera in another photo of them; visitors are people who are never enrolled.
- Everything goes through dlib once, at start: the enrolment templates and the encoding of each photo the camera can
  show. During the run a boarding passenger's photo encoding is matched against the gallery with the worker's own
  Matcher and tolerance, so a ride started by a face is a real recognition of a real photo. The live passenger is
  taken to pass the liveness check (the worker's liveness is tested on its own, tests/face/test_worker.py).
- Deterministic for a seed.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from carctl.core.signals import Recognition
from sim.traffic import Passenger

FACES = Path(__file__).resolve().parent.parent / "tests" / "data" / "faces"
# Who lives where in the simulated building, and how many photos enrol them.
RESIDENTS = {"obama": (5, 2), "biden": (2, 1), "kit_harington": (3, 2), "alex_lacamoire": (4, 2)}
VISITORS = ("lin_manuel_miranda", "rose_leslie")
ENROLLED_SHARE = 0.7  # of passengers who live on a resident's landing, the share who are that enrolled resident


@dataclass(slots=True)
class FaceStats:
    residents_seen: int = 0
    rides_started_by_face: int = 0
    residents_missed: int = 0
    wrong_person: int = 0
    visitors_seen: int = 0
    visitors_accepted: int = 0
    distances: list[float] = field(default_factory=list)

    def report(self) -> dict[str, object]:
        return {"residents_seen": self.residents_seen, "rides_started_by_face": self.rides_started_by_face,
                "residents_missed": self.residents_missed, "wrong_person": self.wrong_person,
                "visitors_seen": self.visitors_seen, "visitors_accepted": self.visitors_accepted}


class SimulatedCamera:
    def __init__(self, landing_count: int, seed: int, tolerance: float = 0.5) -> None:
        from carctl.face.engine import FaceEngine, Matcher, load_image
        from carctl.face.gallery import Resident

        with (FACES / "manifest.csv").open() as manifest:
            rows = [row for row in csv.DictReader(manifest) if row["identity"] != "group"]
        engine = FaceEngine()
        encodings: dict[str, list[np.ndarray]] = {}
        for row in rows:
            faces = engine.faces(load_image(FACES / row["file"]))
            if len(faces) == 1:
                encodings.setdefault(row["identity"], []).append(faces[0].encoding)
        self.tolerance = tolerance
        self.homes = {name: min(home, landing_count - 1) for name, (home, _) in RESIDENTS.items()}
        gallery = [Resident(name, self.homes[name], (self.homes[name],), "SIM-CONSENT", "t", "t",
                            tuple(tuple(map(float, e)) for e in encodings[name][:count]))
                   for name, (_, count) in RESIDENTS.items()]
        self.matcher = Matcher(gallery)
        # What the camera can show of each person: their photos that were not used to enrol them.
        self.shown = {name: encodings[name][count:] or encodings[name][-1:] for name, (_, count) in RESIDENTS.items()}
        for visitor in VISITORS:
            self.shown[visitor] = encodings[visitor]
        self.rng = random.Random(seed)
        self.stats = FaceStats()
        self.recognised: dict[int, str] = {}  # passenger ident -> resident recognised

    def assign(self, passenger: Passenger) -> None:
        """Decide who the passenger is: an enrolled resident of their home landing, or someone unenrolled."""
        home = passenger.destination if passenger.destination != 0 else passenger.origin
        living_here = [name for name, landing in self.homes.items() if landing == home]
        if living_here and self.rng.random() < ENROLLED_SHARE:
            passenger.identity = self.rng.choice(living_here)
        elif self.rng.random() < 0.3:
            passenger.identity = self.rng.choice(VISITORS)

    def on_board(self, passenger: Passenger) -> Recognition | None:
        """The passenger steps in front of the camera; a recognition for the controller, or None."""
        identity = passenger.identity
        if identity is None:
            return None
        photo = self.rng.choice(self.shown[identity])
        found, distance = self.matcher.best(photo)
        accepted = found is not None and distance <= self.tolerance
        if identity in RESIDENTS:
            self.stats.residents_seen += 1
            if not accepted:
                self.stats.residents_missed += 1
            elif found != identity:
                self.stats.wrong_person += 1
        else:
            self.stats.visitors_seen += 1
            self.stats.visitors_accepted += int(accepted)
        if not accepted or found is None:
            return None
        if found == identity and self.homes[found] == passenger.destination:
            self.stats.rides_started_by_face += 1
        self.stats.distances.append(distance)
        self.recognised[passenger.ident] = found
        return Recognition(found, self.homes[found], frozenset({self.homes[found]}), "face")
