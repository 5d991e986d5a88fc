"""The model files the face worker loads, checked against carctl/face/model_manifest.toml before anything uses them."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path

MANIFEST = Path(__file__).resolve().parent / "model_manifest.toml"  # package data: in a wheel too


class ModelError(Exception):
    """A model file is missing or is not the file the manifest names: the worker refuses to run."""


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    sha256: str
    licence: str
    required: bool


def read_manifest(path: Path = MANIFEST) -> list[ModelSpec]:
    try:
        entries = tomllib.loads(path.read_text(encoding="utf-8"))["model"]
        return [ModelSpec(e["name"], e["sha256"], e["licence"], bool(e["required"])) for e in entries]
    except (OSError, KeyError, TypeError, tomllib.TOMLDecodeError) as error:
        raise ModelError(f"model manifest {path} is unreadable: {error}") from None


def models_directory() -> Path:
    import face_recognition_models

    return Path(face_recognition_models.face_recognition_model_location()).parent


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(directory: Path | None = None, manifest: Path = MANIFEST, names: tuple[str, ...] | None = None) -> None:
    """Check the required files (and any named ones) against the manifest; ModelError on any mismatch."""
    directory = directory or models_directory()
    for spec in read_manifest(manifest):
        if not (spec.required or (names and spec.name in names)):
            continue
        path = directory / spec.name
        if not path.exists():
            raise ModelError(f"model {spec.name} is missing from {directory}")
        if sha256(path) != spec.sha256:
            raise ModelError(f"model {path} does not match its sha256 in {manifest}: refusing to run")
