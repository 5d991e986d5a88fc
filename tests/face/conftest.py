"""Real photos through dlib. Loading the models takes a second, so one engine serves the whole session."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

FACES = Path(__file__).resolve().parent.parent / "data" / "faces"


def photos() -> dict[str, list[Path]]:
    """Identity -> photos of that person alone (group photos are left out)."""
    with (FACES / "manifest.csv").open() as manifest:
        rows = list(csv.DictReader(manifest))
    people: dict[str, list[Path]] = {}
    for row in rows:
        if row["identity"] != "group":
            people.setdefault(row["identity"], []).append(FACES / row["file"])
    return people


@pytest.fixture(scope="session")
def engine():  # type: ignore[no-untyped-def]
    from carctl.face.engine import FaceEngine

    return FaceEngine()


@pytest.fixture(scope="session")
def encodings(engine):  # type: ignore[no-untyped-def]
    """The single face of every single-person photo, by identity."""
    from carctl.face.engine import load_image

    out: dict[str, list] = {}
    for identity, paths in photos().items():
        for path in paths:
            faces = engine.faces(load_image(path))
            assert len(faces) == 1, f"{path}: expected one face, found {len(faces)}"
            out.setdefault(identity, []).append(faces[0].encoding)
    return out
