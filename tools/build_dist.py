"""Build the offline bundle for the board: out/dist/carctl-<version>-board[-face].tar.gz (`make dist`).

The bundle holds everything deploy/install.sh needs to install carctl on a board with no network and no compiler:
the carctl wheel, every wheel it needs (fetched from PyPI for the board's Pythons and machine type, wheels only,
pinned by requirements/constraints.txt, so the pins stay in one place), the board's configuration, the systemd unit,
the Mosquitto configuration and, with --face, the face packages and the model files. Runs with the standard library
and pip; the build needs PyPI, the board does not.

    python3.11 tools/build_dist.py --out out/dist --python 3.11 --python 3.13 --arch aarch64 [--face]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "requirements" / "constraints.txt"
PYTHONS = ("3.11", "3.12", "3.13")
ARCHES = ("aarch64", "x86_64")
# Raspberry Pi OS bookworm has glibc 2.36 (trixie 2.41): a wheel for a newer glibc would not load on bookworm. This
# pip takes no range of manylinux tags, so every one up to 2.36 is named.
GLIBC_MINOR = 36
FACE_RECOGNITION = "face_recognition==1.3.0"


class Refused(Exception):
    """Bad input or a missing prerequisite: one sentence, exit code 2."""


def platforms(arch: str) -> list[str]:
    tags = [f"manylinux2014_{arch}"] + [f"manylinux_2_{minor}_{arch}" for minor in range(17, GLIBC_MINOR + 1)]
    return [flag for tag in tags for flag in ("--platform", tag)]


def pip(*args: str) -> None:
    # Wheels only: nothing is compiled, here or on the board.
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet", *args]
    if subprocess.run(command).returncode != 0:
        raise Refused(f"pip {args[0]} failed (its message is above); is PyPI reachable?")


def version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def build(out: Path, pythons: list[str], arch: str, face: bool) -> Path:
    name = f"carctl-{version()}-board{'-face' if face else ''}"
    with tempfile.TemporaryDirectory() as scratch:
        stage = Path(scratch) / name
        wheels = stage / "wheels"
        wheels.mkdir(parents=True)
        # The carctl wheel, built by the pinned setuptools (build-system.requires) in pip's build environment.
        pip("wheel", "--no-deps", "--only-binary=:all:", "-c", str(CONSTRAINTS), "-w", str(wheels), str(ROOT))
        carctl = next(wheels.glob("carctl-*.whl"))
        extras = "platform,service,face" if face else "platform,service"
        for python in pythons:
            target = ["--only-binary=:all:", "--implementation", "cp", "--python-version", python, *platforms(arch)]
            pip("download", *target, "-c", str(CONSTRAINTS), "-d", str(wheels), f"{carctl}[{extras}]")
            if face:
                # Its dependency dlib would compile from source: dlib-bin (the face extra) is the prebuilt wheel.
                pip("download", *target, "--no-deps", "-d", str(wheels), FACE_RECOGNITION)
        for source, dest in (("configs/board.toml", "configs/board.toml"),
                             ("deploy/carctl.service", "deploy/carctl.service"),
                             ("deploy/mosquitto", "deploy/mosquitto"),
                             ("deploy/install.sh", "install.sh"),
                             ("requirements/constraints.txt", "requirements/constraints.txt")):
            copy = shutil.copytree if (ROOT / source).is_dir() else shutil.copy2
            (stage / dest).parent.mkdir(parents=True, exist_ok=True)
            copy(ROOT / source, stage / dest)
        if face:
            (stage / "models").mkdir()
            (stage / "tools").mkdir()
            # Where tools/install_face_models.py looks for it, as in the source tree (the wheel carries its own).
            (stage / "carctl" / "face").mkdir(parents=True)
            shutil.copy2(ROOT / "carctl" / "face" / "model_manifest.toml", stage / "carctl" / "face" / "model_manifest.toml")
            shutil.copy2(ROOT / "tools" / "install_face_models.py", stage / "tools" / "install_face_models.py")
            fetch = [sys.executable, str(ROOT / "tools" / "install_face_models.py"), "--fetch-to", str(stage / "models")]
            if subprocess.run(fetch).returncode != 0:
                raise Refused("the face model files could not be fetched (the message is above)")
        # What install.sh checks the board against: the Pythons and machine type the wheels are for.
        (stage / "TARGETS").write_text("".join(f"cp{p.replace('.', '')}-{arch}\n" for p in pythons))
        out.mkdir(parents=True, exist_ok=True)
        archive = out / f"{name}.tar.gz"
        with tarfile.open(archive, "w:gz") as bundle:
            bundle.add(stage, arcname=name)
    return archive


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit code 2: no usage text above it
        self.exit(2, f"build_dist: {message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="build_dist", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "dist")
    parser.add_argument("--python", action="append", choices=PYTHONS, help="a Python of the board (repeatable)")
    parser.add_argument("--arch", choices=ARCHES, default="aarch64")
    parser.add_argument("--face", action="store_true", help="also the face packages and model files")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.out.is_dir():
        print(f"build_dist: --out {args.out} is not a folder", file=sys.stderr)
        return 2
    try:
        archive = build(args.out, sorted(set(args.python or ["3.11", "3.13"])), args.arch, args.face)
    except Refused as refusal:
        print(f"build_dist: {refusal}", file=sys.stderr)
        return 2
    except OSError as error:  # the output folder unwritable or full, after the downloads
        print(f"build_dist: {error.filename or args.out}: {error.strerror or error}", file=sys.stderr)
        return 2
    print(archive)
    return 0


if __name__ == "__main__":
    sys.exit(main())
