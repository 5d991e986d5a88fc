"""Install the face model files into the virtual environment, from PyPI, without building anything.

face_recognition 1.3.0 finds its models through the package face_recognition_models, whose 0.3.0 release exists
only as a source archive of data files (its one wheel, 0.1.3, lacks the 5-point model), and whose __init__ needs
pkg_resources, which setuptools no longer ships. So: `pip download` the archive, unpack the package's model files
into site-packages/face_recognition_models/models/, write an __init__ with the same four path functions, and check
every file against carctl/face/model_manifest.toml. Nothing is compiled. Quick when already installed.

For the board's offline bundle (tools/build_dist.py): `--fetch-to DIR` only downloads and checks the files into DIR,
and `--from DIR` installs them from DIR with no network (deploy/install.sh). Standard library only, and the manifest
read beside this script, because the bundle is built by a Python that has no carctl installed.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import tomllib
from pathlib import Path

MANIFEST = Path(__file__).resolve().parent.parent / "carctl" / "face" / "model_manifest.toml"

PACKAGE = "face_recognition_models"
VERSION = "0.3.0"
INIT = '''"""face_recognition_models 0.3.0's model files, installed by carctl's tools/install_face_models.py."""
import os

_MODELS = os.path.join(os.path.dirname(__file__), "models")


def pose_predictor_model_location():
    return os.path.join(_MODELS, "shape_predictor_68_face_landmarks.dat")


def pose_predictor_five_point_model_location():
    return os.path.join(_MODELS, "shape_predictor_5_face_landmarks.dat")


def face_recognition_model_location():
    return os.path.join(_MODELS, "dlib_face_recognition_resnet_model_v1.dat")


def cnn_face_detector_model_location():
    return os.path.join(_MODELS, "mmod_human_face_detector.dat")
'''


def sha256(path: Path) -> str:
    # carctl/face/models.py has the same: this tool runs where carctl is not importable (a bundle being built or
    # installed), so it keeps its own copy of these few lines.
    digest = hashlib.sha256()
    with path.open("rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def complete(models: Path, manifest: list[dict[str, str]]) -> bool:
    return all((models / m["name"]).is_file() and sha256(models / m["name"]) == m["sha256"] for m in manifest)


def fetch(models: Path, manifest: list[dict[str, str]]) -> None:
    """Download the archive from PyPI and unpack the manifest's files into models/."""
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                        "--no-deps", "--no-binary", ":all:", "-d", scratch, f"{PACKAGE}=={VERSION}"], check=True)
        archive = next(Path(scratch).glob(f"{PACKAGE}-{VERSION}.tar.gz"))
        models.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as bundle:
            for spec in manifest:
                member = bundle.getmember(f"{PACKAGE}-{VERSION}/{PACKAGE}/models/{spec['name']}")
                source = bundle.extractfile(member)
                assert source is not None
                (models / spec["name"]).write_bytes(source.read())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="install_face_models", description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--fetch-to", type=Path, metavar="DIR", help="only download and check the files into DIR")
    where.add_argument("--from", dest="source", type=Path, metavar="DIR", help="install from DIR, no network")
    args = parser.parse_args(argv)
    try:
        entries = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))["model"]
        manifest = [{"name": e["name"], "sha256": e["sha256"]} for e in entries]
    except (OSError, KeyError, TypeError, tomllib.TOMLDecodeError) as error:
        print(f"install_face_models: the manifest {MANIFEST} is unreadable: {error}", file=sys.stderr)
        return 2
    if args.source is not None and not complete(args.source, manifest):
        print(f"install_face_models: {args.source} lacks a model file of {MANIFEST}, or one does not match it",
              file=sys.stderr)
        return 2
    target = Path(sysconfig.get_paths()["purelib"]) / PACKAGE
    models = args.fetch_to or target / "models"
    if complete(models, manifest):
        return 0
    if args.source is not None:
        models.mkdir(parents=True, exist_ok=True)
        for spec in manifest:
            shutil.copyfile(args.source / spec["name"], models / spec["name"])
    else:
        fetch(models, manifest)
    if args.fetch_to is None:
        (target / "__init__.py").write_text(INIT)
    for spec in manifest:
        if sha256(models / spec["name"]) != spec["sha256"]:
            print(f"install_face_models: {spec['name']} does not match carctl/face/model_manifest.toml", file=sys.stderr)
            return 1
    print(f"face models {'fetched into' if args.fetch_to else 'installed in'} {models}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
