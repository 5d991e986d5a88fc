"""Recognition on real photos through dlib: pairs, 1:N with visitors, group photos, deletion, bad images, models."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest

from carctl.face.engine import DEFAULT_TOLERANCE, ImageError, Matcher, load_image
from carctl.face.gallery import Resident
from carctl.face.models import ModelError, models_directory, verify
from tests.face.conftest import FACES

# Enrolled with the photos listed; every other photo of them is a probe. Visitors are never enrolled.
ENROLMENT = {"obama": 2, "biden": 1, "kit_harington": 2, "alex_lacamoire": 2}
VISITORS = ("lin_manuel_miranda", "rose_leslie")


def resident(name: str, templates: list[np.ndarray]) -> Resident:
    return Resident(name, 3, (0, 3), "C-1", "t", "t", tuple(tuple(float(v) for v in t) for t in templates))


def test_pairs_at_the_default_tolerance(encodings: dict[str, list[np.ndarray]]) -> None:
    items = [(identity, e) for identity, found in encodings.items() for e in found]
    genuine, impostor = [], []
    for (a, ea), (b, eb) in itertools.combinations(items, 2):
        (genuine if a == b else impostor).append(float(np.linalg.norm(ea - eb)))
    accepted_impostors = sum(d <= DEFAULT_TOLERANCE for d in impostor)
    accepted_genuine = sum(d <= DEFAULT_TOLERANCE for d in genuine)
    assert len(items) == 17 and len(impostor) == 113 and len(genuine) == 23
    assert accepted_impostors == 0  # no false match among 113 pairs of different people
    assert accepted_genuine / len(genuine) >= 0.9  # single photos against single photos


def test_one_to_many_with_visitors(encodings: dict[str, list[np.ndarray]]) -> None:
    matcher = Matcher([resident(name, encodings[name][:count]) for name, count in ENROLMENT.items()])
    probes = [(name, e) for name, count in ENROLMENT.items() for e in encodings[name][count:]]
    recognised = wrong = 0
    for name, probe in probes:
        found, distance = matcher.best(probe)
        if distance <= DEFAULT_TOLERANCE:
            recognised += found == name
            wrong += found != name
    visitors_accepted = sum(matcher.best(e)[1] <= DEFAULT_TOLERANCE for v in VISITORS for e in encodings[v])
    assert wrong == 0
    assert visitors_accepted == 0
    assert recognised / len(probes) >= 0.95


def test_group_photo_finds_each_enrolled_face(engine, encodings: dict[str, list[np.ndarray]]) -> None:  # type: ignore[no-untyped-def]
    matcher = Matcher([resident("obama", encodings["obama"][:2]), resident("biden", encodings["biden"][:1]),
                       resident("kit_harington", encodings["kit_harington"][:2])])
    names = set()
    for face in engine.faces(load_image(FACES / "group" / "group_3.jpg")):
        found, distance = matcher.best(face.encoding)
        if distance <= DEFAULT_TOLERANCE:
            names.add(found)
    assert names == {"obama", "biden"}
    kit_and_rose = [matcher.best(face.encoding) for face in engine.faces(load_image(FACES / "group" / "group_2.jpg"))]
    assert sorted(found for found, distance in kit_and_rose if distance <= DEFAULT_TOLERANCE) == ["kit_harington"]
    assert len(kit_and_rose) == 2  # Rose Leslie is seen, and stays unknown


def test_deleted_resident_is_unknown_afterwards(encodings: dict[str, list[np.ndarray]]) -> None:
    everyone = {name: resident(name, encodings[name][:count]) for name, count in ENROLMENT.items()}
    probe = encodings["biden"][1]
    assert Matcher(list(everyone.values())).best(probe)[0] == "biden"
    del everyone["biden"]
    found, distance = Matcher(list(everyone.values())).best(probe)
    assert distance > DEFAULT_TOLERANCE


def test_empty_gallery_matches_no_one(encodings: dict[str, list[np.ndarray]]) -> None:
    assert Matcher([]).best(encodings["obama"][0]) == (None, float("inf"))


def test_unreadable_image_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ImageError):
        load_image(bad)
    with pytest.raises(ImageError):
        load_image(tmp_path / "missing.jpg")


def test_tampered_model_file_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "models"
    shutil.copytree(models_directory(), copy)
    verify(copy)
    target = copy / "dlib_face_recognition_resnet_model_v1.dat"
    data = bytearray(target.read_bytes())
    data[1000] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match"):
        verify(copy)
    (copy / "shape_predictor_5_face_landmarks.dat").unlink()
    with pytest.raises(ModelError, match="missing"):
        verify(copy)
