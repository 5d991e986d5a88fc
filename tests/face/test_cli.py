"""`carctl face` as an operator runs it, on real photos."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.face.conftest import FACES

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
    assert face("delete", *store, "--resident", "r-obama").returncode == 0
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
