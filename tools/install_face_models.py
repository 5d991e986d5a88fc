"""Install the face model files into the virtual environment, from PyPI, without building anything.

face_recognition 1.3.0 finds its models through the package face_recognition_models, whose 0.3.0 release exists
only as a source archive of data files (its one wheel, 0.1.3, lacks the 5-point model), and whose __init__ needs
pkg_resources, which setuptools no longer ships. So: `pip download` the archive, unpack the package's model files
into site-packages/face_recognition_models/models/, write an __init__ with the same four path functions, and check
every file against models/manifest.toml. Nothing is compiled. Quick when already installed.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from pathlib import Path

from carctl.face.models import read_manifest, sha256

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


def main() -> int:
    manifest = [{"name": spec.name, "sha256": spec.sha256} for spec in read_manifest()]
    target = Path(sysconfig.get_paths()["purelib"]) / PACKAGE
    models = target / "models"
    if all((models / m["name"]).exists() and sha256(models / m["name"]) == m["sha256"] for m in manifest):
        return 0
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
    (target / "__init__.py").write_text(INIT)
    for spec in manifest:
        if sha256(models / spec["name"]) != spec["sha256"]:
            print(f"install_face_models: {spec['name']} does not match models/manifest.toml", file=sys.stderr)
            return 1
    print(f"face models installed in {models}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
