"""`carctl face` as an operator runs it, on real photos and on hostile ones."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from carctl.cli import main
from tests.face.conftest import FACES
from tests.face.hostile_images import CASES, truncated_face_jpeg

ROOT = Path(__file__).resolve().parent.parent.parent


def face(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "carctl.cli", "face", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def test_enrol_identify_list_delete(tmp_path: Path) -> None:
    store = ["--gallery", str(tmp_path / "g"), "--key-file", str(tmp_path / "key"), "--community", "xihan"]
    result = face("enroll", *store, "--resident", "r-obama", "--home-landing", "4", "--allowed-landings", "0,2",
                  "--consent", "CONSENT-17", str(FACES / "obama" / "obama_1.jpg"), str(FACES / "obama" / "obama_2.jpg"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"enrolled": "r-obama", "templates": 2, "community": "xihan"}
    identified = json.loads(face("identify", *store, str(FACES / "obama" / "obama_6.jpg"), "--json").stdout)
    assert [f["resident"] for f in identified["faces"]] == ["r-obama"]
    assert identified["faces"][0]["distance"] < 0.5 and len(identified["faces"][0]["box"]) == 4
    assert identified["elapsed_ms"] > 0
    stranger = json.loads(face("identify", *store, str(FACES / "biden" / "biden_2.jpg"), "--json").stdout)
    assert [f["resident"] for f in stranger["faces"]] == [None]
    listing = json.loads(face("list", *store).stdout)
    assert listing[0]["allowed_landings"] == [0, 2, 4] and listing[0]["consent_ref"] == "CONSENT-17"
    assert "embeddings" not in json.dumps(listing)
    key_before = (tmp_path / "key").read_bytes()
    assert face("delete", *store, "--resident", "r-obama").returncode == 0
    assert (tmp_path / "key").read_bytes() != key_before  # the deletion replaced the key
    after = json.loads(face("identify", *store, str(FACES / "obama" / "obama_6.jpg"), "--json").stdout)
    assert [f["resident"] for f in after["faces"]] == [None]
    assert face("delete", *store, "--resident", "r-obama").returncode == 2


def test_bad_enrolments_exit_2_and_write_nothing(tmp_path: Path) -> None:
    store = ["--gallery", str(tmp_path / "g"), "--key-file", str(tmp_path / "key"), "--community", "xihan"]
    unreadable = tmp_path / "broken.jpg"
    unreadable.write_bytes(b"not an image at all")
    blank = tmp_path / "blank.png"
    import numpy as np
    from PIL import Image

    Image.fromarray(np.full((240, 320, 3), 200, dtype=np.uint8)).save(blank)
    cases = [
        (["--consent", "C1", str(unreadable)], "not a readable image"),
        (["--consent", "C1", str(blank)], "no face found"),
        (["--consent", "C1", str(FACES / "group" / "group_3.jpg")], "2 faces found"),
        (["--consent", "", str(FACES / "biden" / "biden_1.jpg")], "consent"),
        (["--consent", "C1", str(FACES / "biden" / "biden_1.jpg"), str(unreadable)], "not a readable image"),
    ]
    for extra, message in cases:
        result = face("enroll", *store, "--resident", "r-1", "--home-landing", "2", *extra)
        assert result.returncode == 2, extra
        assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "g" / "xihan.gallery").exists()


def test_wrong_key_is_refused_cleanly(tmp_path: Path) -> None:
    store = ["--gallery", str(tmp_path / "g"), "--community", "xihan"]
    assert face("enroll", *store, "--key-file", str(tmp_path / "key"), "--resident", "r-1", "--home-landing", "2",
                "--consent", "C1", str(FACES / "biden" / "biden_1.jpg")).returncode == 0
    (tmp_path / "other").write_bytes(b"\x01" * 32)
    (tmp_path / "other").chmod(0o600)
    result = face("list", *store, "--key-file", str(tmp_path / "other"))
    assert result.returncode == 2 and "wrong key" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("case", list(CASES))
def test_a_hostile_image_exits_2_in_one_sentence_and_enrols_nothing(
        tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]) -> None:
    data, words = CASES[case]
    image = tmp_path / "photo.jpg"
    image.write_bytes(data)
    store = ["--gallery", str(tmp_path / "g"), "--key-file", str(tmp_path / "key"), "--community", "xihan"]
    assert main(["face", "enroll", *store, "--resident", "r-1", "--home-landing", "2", "--consent", "C1",
                 str(image)]) == 2
    assert main(["face", "identify", *store, str(image)]) == 2
    for refusal in capsys.readouterr().err.splitlines():
        assert refusal.startswith(f"carctl face: error: {image}: ") and words in refusal
    assert not (tmp_path / "g").exists()


def test_max_pixels_is_the_operators(tmp_path: Path) -> None:
    store = ["--gallery", str(tmp_path / "g"), "--key-file", str(tmp_path / "key"), "--community", "xihan"]
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(truncated_face_jpeg())
    for image, extra, message in ((FACES / "biden" / "biden_1.jpg", ["--max-pixels", "10000"],
                                   "more than the 10,000 allowed"),
                                  (truncated, [], "truncated")):
        result = face("enroll", *store, "--resident", "r-1", "--home-landing", "2", "--consent", "C1", *extra,
                      str(image))
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "g").exists()
