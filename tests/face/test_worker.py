"""The face worker frame by frame, and as a process sending events to the loop's inbox."""

from __future__ import annotations

import subprocess
import sys
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from carctl.face.engine import load_image
from carctl.face.gallery import Gallery, Resident, create_key, load_key
from carctl.face.liveness import LivenessCheck, eye_aspect_ratio
from carctl.face.worker import Recogniser
from carctl.runtime.recognitions import RecognitionInbox
from carctl.runtime.sidechannel import prepare_socket_dir
from tests.face.conftest import FACES

ROOT = Path(__file__).resolve().parent.parent.parent


def residents(encodings: dict[str, list[np.ndarray]]) -> list[Resident]:
    return [Resident("r-obama", 4, (0, 4), "C-1", "t", "t", tuple(tuple(map(float, e)) for e in encodings["obama"][:2])),
            Resident("r-biden", 2, (0, 2), "C-2", "t", "t", (tuple(map(float, encodings["biden"][0])),))]


def stepping_in(photo: Path, frames: int = 6) -> list[np.ndarray]:
    """A person walking towards the camera: the photo shifted and grown a little, frame by frame."""
    image = load_image(photo)
    height, width = image.shape[:2]
    canvas_w, canvas_h = width + 120, height + 60
    out = []
    for step in range(frames):
        scale = 0.85 + 0.03 * step
        resized = np.asarray(Image.fromarray(image).resize((int(width * scale), int(height * scale))))
        canvas = np.full((canvas_h, canvas_w, 3), 90, dtype=np.uint8)
        x, y = 10 + 18 * step, 5
        h, w = min(resized.shape[0], canvas_h - y), min(resized.shape[1], canvas_w - x)
        canvas[y:y + h, x:x + w] = resized[:h, :w]
        out.append(canvas)
    return out


def test_a_still_photo_is_not_accepted_but_a_moving_face_is(engine, encodings) -> None:  # type: ignore[no-untyped-def]
    photo = FACES / "obama" / "obama_3.jpg"
    still = load_image(photo)
    recogniser = Recogniser(engine, residents(encodings), 0.5, "movement")
    assert [recogniser.process(still, t) for t in range(8)] == [[]] * 8
    events = [e for t, frame in enumerate(stepping_in(photo)) for e in recogniser.process(frame, 100.0 + t)]
    assert [e.resident for e in events] == ["r-obama"]
    assert events[0].home_landing == 4 and events[0].distance < 0.5


def test_blink_mode_does_not_accept_a_photo_that_never_blinks(engine, encodings) -> None:  # type: ignore[no-untyped-def]
    recogniser = Recogniser(engine, residents(encodings), 0.5, "blink")
    frames = stepping_in(FACES / "obama" / "obama_3.jpg")
    assert all(recogniser.process(frame, float(t)) == [] for t, frame in enumerate(frames))


def test_without_liveness_two_agreeing_frames_give_one_event_per_ride(engine, encodings) -> None:  # type: ignore[no-untyped-def]
    recogniser = Recogniser(engine, residents(encodings), 0.5, "off", agreement_frames=2, repeat_after_s=60)
    frame = load_image(FACES / "biden" / "biden_2.jpg")
    results = [recogniser.process(frame, float(t)) for t in range(5)]
    assert [len(r) for r in results] == [0, 1, 0, 0, 0]
    assert results[1][0].resident == "r-biden"
    empty = np.full_like(frame, 120)
    assert recogniser.process(empty, 90.0) == []  # she has gone; the next ride starts afresh
    assert len(recogniser.process(frame, 100.0)) == 0  # needs agreeing frames again
    assert len(recogniser.process(frame, 101.0)) == 1


def test_a_stranger_never_produces_an_event(engine, encodings) -> None:  # type: ignore[no-untyped-def]
    recogniser = Recogniser(engine, residents(encodings), 0.5, "off", agreement_frames=1)
    for name in ("lin_manuel_miranda/lin_manuel_miranda_1.jpg", "rose_leslie/rose_leslie_1.jpg",
                 "kit_harington/kit_harington_1.jpg"):
        assert recogniser.process(load_image(FACES / name), 0.0) == []


def test_eye_aspect_ratio_and_blink_sequence() -> None:
    open_eye = np.array([(0, 0), (2, -2), (4, -2), (6, 0), (4, 2), (2, 2)], dtype=float)
    closed_eye = np.array([(0, 0), (2, -0.3), (4, -0.3), (6, 0), (4, 0.3), (2, 0.3)], dtype=float)
    assert eye_aspect_ratio(open_eye) == pytest.approx(4 / 6)
    assert eye_aspect_ratio(closed_eye) < 0.2
    check = LivenessCheck(mode="blink")
    box = (0, 10, 10, 0)
    assert not any(check.observe(box, ear) for ear in (0.3, 0.31, 0.3))
    assert not check.observe(box, 0.12)
    assert check.observe(box, 0.3)


@pytest.mark.slow
def test_worker_process_sends_the_event_to_the_loops_inbox(tmp_path: Path, encodings) -> None:  # type: ignore[no-untyped-def]
    create_key(tmp_path / "key")
    gallery = Gallery(tmp_path / "gallery", "xihan", load_key(tmp_path / "key"))
    for resident in residents(encodings):
        gallery.enroll(resident)
    camera = tmp_path / "camera"
    camera.mkdir()
    for index, frame in enumerate(stepping_in(FACES / "obama" / "obama_6.jpg")):
        Image.fromarray(frame).save(camera / f"{index:03d}.png")
    config = tmp_path / "board.toml"
    config.write_text(f'[drive]\nendpoint = "tcp://127.0.0.1:1"\n[panel]\nport = "/dev/null"\n'
                      f'[processes]\nface = true\n[face]\ngallery_dir = "{tmp_path / "gallery"}"\n'
                      f'key_file = "{tmp_path / "key"}"\ncommunity = "xihan"\nsource = "{camera}"\n'
                      f'liveness = "movement"\nmax_fps = 50\n[runtime]\nsocket_dir = "{tmp_path / "run"}"\n')
    inbox = RecognitionInbox(prepare_socket_dir(tmp_path / "run"), landing_count=6)
    seen: list[Any] = []
    try:
        # Taken as the loop takes them, while the worker runs: a recognition older than the inbox's age limit is
        # refused as stale, and the worker may go on reading frames for longer than that after it.
        worker = subprocess.Popen([sys.executable, "-m", "carctl.face.worker", "--config", str(config)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        deadline = time.monotonic() + 120
        while worker.poll() is None and time.monotonic() < deadline:
            seen.extend(inbox.take())
            time.sleep(0.05)
        _, errors = worker.communicate(timeout=10)
        assert worker.returncode == 0, errors
        seen.extend(inbox.take())
    finally:
        inbox.close()
    assert [(r.resident, r.home_landing, r.allowed_landings) for r in seen] == [("r-obama", 4, frozenset({0, 4}))]


@pytest.mark.slow
def test_worker_refuses_a_tampered_gallery(tmp_path: Path, encodings) -> None:  # type: ignore[no-untyped-def]
    create_key(tmp_path / "key")
    gallery = Gallery(tmp_path / "gallery", "xihan", load_key(tmp_path / "key"))
    gallery.enroll(residents(encodings)[0])
    blob = bytearray(gallery.path.read_bytes())
    blob[20] ^= 1
    gallery.path.write_bytes(bytes(blob))
    config = tmp_path / "board.toml"
    config.write_text(f'[drive]\nendpoint = "tcp://127.0.0.1:1"\n[panel]\nport = "/dev/null"\n'
                      f'[face]\ngallery_dir = "{tmp_path / "gallery"}"\nkey_file = "{tmp_path / "key"}"\n'
                      f'community = "xihan"\nsource = "{tmp_path}"\n')
    result = subprocess.run([sys.executable, "-m", "carctl.face.worker", "--config", str(config)],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 3
    assert "tampered" in result.stderr and "Traceback" not in result.stderr


def test_inbox_drops_malformed_datagrams(tmp_path: Path) -> None:
    import socket

    inbox = RecognitionInbox(prepare_socket_dir(tmp_path / "run"), landing_count=6)
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        good = {"type": "recognition", "resident": "r", "home_landing": 3, "allowed_landings": [1],
                "sent_s": time.monotonic()}
        for datagram in (b"not json", b'{"type": "recognition"}', b'[1, 2]', json.dumps(good).encode()):
            sender.sendto(datagram, str(inbox.inbox.path))
        time.sleep(0.05)
        seen = inbox.take()
    finally:
        sender.close()
        inbox.close()
    assert [r.resident for r in seen] == ["r"] and inbox.refused == 3
