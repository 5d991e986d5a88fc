"""`carctl face enroll | identify | delete | list`: the resident gallery from the command line.

Exit codes: 0 done, 2 bad input (an unreadable, truncated or too large image, no face or several faces at enrolment,
no consent, a tampered gallery or wrong key, an older copy of the gallery, an unknown resident, a key that could not
be replaced after a deletion, an option out of its range); nothing is written unless the whole command succeeds,
except that a deletion whose key could not be replaced still removes the resident, and says so.

The options' ranges are the configuration's: --tolerance that of face.tolerance, --max-pixels that of
face.max_image_pixels, landings 0..99 (carctl.core.config.MAX_LANDING_INDEX). The CLI does not know the building, so
a landing it takes may still be one the building does not have: the car refuses a recognition for such a landing.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when used: `carctl --help` must not load numpy or the cryptography library
    import numpy as np

    from carctl.face.gallery import Gallery

EXIT_BAD_INPUT = 2
DEFAULT_MAX_PIXELS = 16_000_000  # carctl.face.images.DEFAULT_MAX_PIXELS, without importing numpy for --help
LANDINGS_HELP = "0..99; the car refuses a landing its building does not have"


def add_parser(commands: argparse._SubParsersAction, parser_class: type) -> None:  # type: ignore[type-arg]
    face = commands.add_parser("face", help="the resident gallery for face recognition")
    actions = face.add_subparsers(dest="face_command", required=True, parser_class=parser_class)

    def gallery_args(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--gallery", type=Path, required=True, help="directory of community galleries")
        sub.add_argument("--key-file", type=Path, required=True, help="the gallery key (mode 0600)")
        sub.add_argument("--community", required=True)

    def image_args(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                         help="refuse an image with more pixels than this, from its header (default 16,000,000; "
                              "10,000 to 100,000,000, as face.max_image_pixels)")

    enroll = actions.add_parser("enroll", help="enrol a resident from one or more photos of them")
    gallery_args(enroll)
    enroll.add_argument("--resident", required=True)
    enroll.add_argument("--home-landing", type=int, required=True, help=f"a landing index, {LANDINGS_HELP}")
    enroll.add_argument("--allowed-landings", default="",
                        help=f"comma-separated landing indices, {LANDINGS_HELP}")
    enroll.add_argument("--consent", default="", help="reference of the resident's separate consent record")
    enroll.add_argument("images", type=Path, nargs="+")
    image_args(enroll)
    identify = actions.add_parser("identify", help="who is in this photo")
    gallery_args(identify)
    image_args(identify)
    identify.add_argument("image", type=Path)
    identify.add_argument("--json", action="store_true")
    identify.add_argument("--tolerance", type=float, default=None,
                          help="the largest distance that is a match (0.2 to 0.7, as face.tolerance; default 0.5)")
    deleting = ("remove a resident from the gallery and replace the gallery key, so that copies of the gallery made "
                "before no longer decrypt with the key on this car; backups taken with their key, logs and the "
                "platform's copies are not reached (docs/privacy.md)")
    delete = actions.add_parser("delete", help=deleting, description=deleting[0].upper() + deleting[1:] + ".")
    gallery_args(delete)
    delete.add_argument("--resident", required=True)
    listing = actions.add_parser("list", help="enrolled residents (never their templates)")
    gallery_args(listing)
    actions.add_parser("bench", help="time a 640x480 frame to an event, and a 10,000-resident search")


def _fail(message: str) -> int:
    print(f"carctl face: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def run(args: argparse.Namespace) -> int:
    from carctl.face.engine import ImageError
    from carctl.face.gallery import GalleryError
    from carctl.face.models import ModelError

    try:
        return _run(args)
    except (GalleryError, ImageError, ModelError) as error:
        return _fail(str(error))


def _open(args: argparse.Namespace, change: bool) -> Gallery:
    """The gallery opened by its owner for a change (a key is created for a first enrolment), or read-only."""
    from carctl.face.gallery import Gallery

    if not change:
        return Gallery.open_read_only(args.gallery, args.community, args.key_file)
    creating = args.face_command == "enroll" and not args.key_file.exists()
    gallery = Gallery.open(args.gallery, args.community, args.key_file, create=creating)
    if creating:
        print(f"created key file {args.key_file} (mode 0600): keep it apart from the gallery", file=sys.stderr)
    return gallery


def _run(args: argparse.Namespace) -> int:
    from carctl.core.config import MAX_LANDING_INDEX
    from carctl.face.engine import FaceEngine, load_image, single_face_encoding
    from carctl.face.gallery import Resident, check_id

    action = args.face_command
    if action == "bench":
        from carctl.face.bench import summary

        print(json.dumps(summary()))
        return 0
    problem = _option_problem(args)
    if problem is not None:
        return _fail(problem)
    if action == "enroll":
        check_id("resident", args.resident)
        if not args.consent.strip():
            return _fail("enrolment refused: --consent must name the resident's separate consent record")
        try:
            allowed = tuple(sorted({int(n) for n in args.allowed_landings.split(",") if n.strip()}))
        except ValueError:
            return _fail(f"--allowed-landings {args.allowed_landings[:80]!r}: comma-separated landing indices")
        for landing in (args.home_landing, *allowed):
            if not 0 <= landing <= MAX_LANDING_INDEX:
                option = "--home-landing" if landing == args.home_landing else "--allowed-landings"
                return _fail(f"{option}: landing {landing} is not a landing index 0..{MAX_LANDING_INDEX} (the car "
                             f"refuses a landing its building does not have)")
        # Every photo is decoded (and a hostile one refused) before dlib's models are loaded.
        images = [(str(path), load_image(path, args.max_pixels)) for path in args.images]
        engine = FaceEngine(upsample=1)
        embeddings = [single_face_encoding(engine, image, name) for name, image in images]
        del images
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        gallery = _open(args, change=True)
        gallery.enroll(Resident(args.resident, args.home_landing, allowed, args.consent, now, now, tuple(embeddings)))
        print(json.dumps({"enrolled": args.resident, "templates": len(embeddings), "community": args.community}))
        return 0
    if action == "identify":
        # A photo that must be refused is refused before the gallery is opened or dlib's models are loaded.
        image = load_image(args.image, args.max_pixels)
        return _identify(args, image, _open(args, change=False))
    gallery = _open(args, change=action == "delete")
    if action == "list":
        print(json.dumps([r.public() for r in gallery.residents.values()], indent=2))
        return 0
    if action == "delete":
        if not gallery.delete(args.resident):
            return _fail(f"resident {args.resident!r} is not enrolled in {args.community}")
        print(json.dumps({"deleted": args.resident, "community": args.community}))
        return 0
    raise AssertionError(f"unknown face command {action}")  # argparse allows only the commands above


def _option_problem(args: argparse.Namespace) -> str | None:
    """Why --max-pixels or --tolerance is refused (out of the range of the configuration key it stands for), or
    None."""
    if args.face_command not in ("enroll", "identify"):
        return None
    from carctl.runtime.config import FaceSection  # a tenth of a second (pymodbus): only where an image is read

    span = FaceSection.RANGES["max_image_pixels"]
    if not span.holds(args.max_pixels):
        return f"--max-pixels must be {span.words()}, as face.max_image_pixels (got {args.max_pixels})"
    if args.face_command == "identify" and args.tolerance is not None:
        span = FaceSection.RANGES["tolerance"]
        if not (math.isfinite(args.tolerance) and span.holds(args.tolerance)):
            return f"--tolerance must be {span.words()}, as face.tolerance (got {args.tolerance})"
    return None


def _identify(args: argparse.Namespace, image: np.ndarray, gallery: Gallery) -> int:
    from carctl.face.engine import DEFAULT_TOLERANCE, FaceEngine, Matcher

    tolerance = DEFAULT_TOLERANCE if args.tolerance is None else args.tolerance
    engine = FaceEngine(upsample=1)
    matcher = Matcher(list(gallery.residents.values()))
    started = time.perf_counter()
    found = []
    for face in engine.faces(image):
        resident, distance = matcher.best(face.encoding)
        found.append({"resident": resident if distance <= tolerance else None,
                      "distance": round(distance, 4) if distance != float("inf") else None,
                      "box": list(face.box)})
    elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    if args.json:
        print(json.dumps({"faces": found, "elapsed_ms": elapsed_ms}))
    else:
        for face in found:
            print(f"{face['resident'] or 'unknown'}\tdistance {face['distance']}\tbox {face['box']}")
        print(f"{len(found)} face(s) in {elapsed_ms} ms")
    return 0
