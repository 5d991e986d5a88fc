"""`carctl face enroll | identify | delete | list`: the resident gallery from the command line.

Exit codes: 0 done, 2 bad input (an unreadable image, no face or several faces at enrolment, no consent, a tampered
gallery or wrong key, an unknown resident); nothing is written unless the whole command succeeds.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

EXIT_BAD_INPUT = 2


def add_parser(commands: argparse._SubParsersAction, parser_class: type) -> None:  # type: ignore[type-arg]
    face = commands.add_parser("face", help="the resident gallery for face recognition")
    actions = face.add_subparsers(dest="face_command", required=True, parser_class=parser_class)

    def gallery_args(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--gallery", type=Path, required=True, help="directory of community galleries")
        sub.add_argument("--key-file", type=Path, required=True, help="the gallery key (mode 0600)")
        sub.add_argument("--community", required=True)

    enroll = actions.add_parser("enroll", help="enrol a resident from one or more photos of them")
    gallery_args(enroll)
    enroll.add_argument("--resident", required=True)
    enroll.add_argument("--home-landing", type=int, required=True)
    enroll.add_argument("--allowed-landings", default="", help="comma-separated landing indices")
    enroll.add_argument("--consent", default="", help="reference of the resident's separate consent record")
    enroll.add_argument("images", type=Path, nargs="+")
    identify = actions.add_parser("identify", help="who is in this photo")
    gallery_args(identify)
    identify.add_argument("image", type=Path)
    identify.add_argument("--json", action="store_true")
    identify.add_argument("--tolerance", type=float, default=None)
    delete = actions.add_parser("delete", help="remove every trace of a resident")
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


def _open(args: argparse.Namespace, create_key: bool) -> object:
    from carctl.face import gallery

    if create_key and not args.key_file.exists():
        gallery.create_key(args.key_file)
        print(f"created key file {args.key_file} (mode 0600): keep it apart from the gallery", file=sys.stderr)
    return gallery.Gallery(args.gallery, args.community, gallery.load_key(args.key_file))


def _run(args: argparse.Namespace) -> int:
    from carctl.face.engine import DEFAULT_TOLERANCE, FaceEngine, Matcher, load_image, single_face_encoding
    from carctl.face.gallery import Resident, check_id

    action = args.face_command
    if action == "bench":
        from carctl.face.bench import summary

        print(json.dumps(summary()))
        return 0
    if action == "enroll":
        check_id("resident", args.resident)
        if not args.consent.strip():
            return _fail("enrolment refused: --consent must name the resident's separate consent record")
        if args.home_landing < 0:
            return _fail("--home-landing must be a landing index, 0 or more")
        try:
            allowed = tuple(sorted({int(n) for n in args.allowed_landings.split(",") if n.strip()}))
        except ValueError:
            return _fail(f"--allowed-landings {args.allowed_landings!r}: comma-separated landing indices")
        engine = FaceEngine(upsample=1)
        embeddings = []
        for path in args.images:
            embeddings.append(single_face_encoding(engine, load_image(path), str(path)))
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        gallery = _open(args, create_key=True)
        gallery.enroll(Resident(args.resident, args.home_landing, allowed, args.consent, now, now,  # type: ignore[attr-defined]
                                tuple(embeddings)))
        print(json.dumps({"enrolled": args.resident, "templates": len(embeddings), "community": args.community}))
        return 0
    gallery = _open(args, create_key=False)
    if action == "list":
        print(json.dumps([r.public() for r in gallery.residents.values()], indent=2))  # type: ignore[attr-defined]
        return 0
    if action == "delete":
        if not gallery.delete(args.resident):  # type: ignore[attr-defined]
            return _fail(f"resident {args.resident!r} is not enrolled in {args.community}")
        print(json.dumps({"deleted": args.resident, "community": args.community}))
        return 0
    # identify
    tolerance = DEFAULT_TOLERANCE if args.tolerance is None else args.tolerance
    engine = FaceEngine(upsample=1)
    matcher = Matcher(list(gallery.residents.values()))  # type: ignore[attr-defined]
    image = load_image(args.image)
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
