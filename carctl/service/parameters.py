"""The Parameters page's list: every key of the running configuration with its value, unit, range and meaning, and
the few a maintenance account may change on a running car.

Rules of this module:
- The keys are the configuration's own dataclasses (carctl/core/config.py BuildingConfig and CarConfig,
  carctl/runtime/config.py's sections), their units and ranges their RANGES tables: a key added there is on the page
  without anyone touching this file.
- The meanings are read at start from the key tables of the documentation (docs/deployment.md for the firmware's
  sections, docs/scenarios.md for `[building]` and `[car]`), as fault_meanings.py reads docs/faults.md: the page and
  the manual never disagree. A key the documents do not describe says where to look instead.
- Values are the configuration's: paths are shown, never what the files hold (passwords, keys).
- Editable are exactly the car settings the platform may change through the settings file (runtime/overrides.py):
  the home landing, floor permissions and the free landings. The face switch, the fourth, stays the platform's:
  switching the feature on needs the community's gallery and key, which only the platform link checks and creates.
  A change is validated by overrides.problem, the check the loop applies, so the page shows the loop's sentence.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carctl.core.config import Range
from carctl.filein import read_bounded
from carctl.runtime import overrides
from carctl.runtime.config import FirmwareConfig

DOCS = Path(__file__).resolve().parents[2] / "docs"
MAX_DOC_BYTES = 1024 * 1024
# | `drive.baud` | `115200` | [9600, 230400] baud | RTU baud rate |: a row of a key table begins with a key.
_ROW_START = re.compile(r"^\| *`[a-z_][a-z0-9_.]*`")
_KEY = re.compile(r"`([a-z_][a-z0-9_.]*)`")
_SECTION = re.compile(r"^## `\[([a-z_]+)\]`")
_MARKUP = re.compile(r"[`*]")
# The editable keys, and their names in the settings file, which are also the form's fields.
EDITABLE = {"car.home_landing": "home_landing", "car.permissions_enabled": "permissions_enabled",
            "car.free_landings": "free_landings"}
MAX_FIELD_CHARS = 400


@dataclass(frozen=True, slots=True)
class KeyDoc:
    default: str
    range: str
    meaning: str


@dataclass(frozen=True, slots=True)
class Parameter:
    key: str  # dotted, as in the file: car.home_landing
    section: str
    value: str  # in force (with the settings file's value for an editable key)
    configured: str  # in the configuration file (differs from value when the settings file changed it)
    unit: str
    range: str
    meaning: str
    editable: bool
    raw: Any  # the value in force, for the form


def _rows(path: Path) -> list[tuple[str, list[str]]]:
    """(the section its heading names, or "", the row's cells) for every key row of a document's tables."""
    try:
        text = read_bounded(path, MAX_DOC_BYTES).decode("utf-8", "replace")
    except OSError:
        return []
    rows, section = [], ""
    for line in text.splitlines():
        heading = _SECTION.match(line)
        if heading:
            section = heading.group(1)
        elif line.startswith("## "):
            section = ""
        if _ROW_START.match(line):
            rows.append((section, [cell.strip() for cell in line.strip().strip("|").split("|")]))
    return rows


def load_docs(docs: Path = DOCS) -> dict[str, KeyDoc]:
    """By dotted key: its default, range and meaning as the documentation gives them. A row naming several keys
    (`platform.community`, `platform.car`) describes each of them."""
    found: dict[str, KeyDoc] = {}
    for name in ("scenarios.md", "deployment.md"):
        for section, cells in _rows(docs / name):
            if len(cells) < 4:
                continue
            keys = _KEY.findall(cells[0])
            meaning = _MARKUP.sub("", "|".join(cells[3:])).strip()
            doc = KeyDoc(_MARKUP.sub("", cells[1]).strip(), _MARKUP.sub("", cells[2]).strip(), meaning)
            for key in keys:
                dotted = key if "." in key else f"{section}.{key}" if section else ""
                if dotted:
                    found.setdefault(dotted, doc)
    return found


def shown_value(value: Any) -> str:
    """As the TOML file spells it: true, 0.02, "/run/carctl", [0, 2]."""
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(value, ensure_ascii=False)


def _sections(config: FirmwareConfig) -> list[tuple[str, Any]]:
    sections: list[tuple[str, Any]] = [("building", config.controller.building), ("car", config.controller.car)]
    for field in dataclasses.fields(FirmwareConfig):
        if field.name != "controller":
            sections.append((field.name, getattr(config, field.name)))
    return sections


def parameters(config: FirmwareConfig, settings: Mapping[str, Any], docs: Mapping[str, KeyDoc]) -> list[Parameter]:
    """Every key of every section, in the order of the dataclasses. ``settings`` is the settings file's (read);
    where it changes a key, the value in force is the file's, if the loop can apply it (overrides.apply)."""
    in_force = config.controller
    try:
        in_force = overrides.apply(config.controller, dict(settings))
    except overrides.ConfigError:
        pass  # the loop refuses such settings too: the configuration's values stand
    face_in_force = settings.get("face_enabled", config.processes.face)
    listed = []
    for name, section in _sections(config):
        ranges: Mapping[str, Range] = getattr(type(section), "RANGES", {})
        for field in dataclasses.fields(section):
            key = f"{name}.{field.name}"
            configured = getattr(section, field.name)
            value = configured
            if name in ("building", "car"):
                value = getattr(getattr(in_force, name), field.name)
            elif key == "processes.face":
                value = face_in_force
            doc = docs.get(key)
            limit = ranges.get(field.name)
            listed.append(Parameter(
                key=key, section=name, value=shown_value(value), configured=shown_value(configured),
                unit=limit.unit if limit is not None else "",
                range=limit.interval if limit is not None else (doc.range if doc is not None else ""),
                meaning=doc.meaning if doc is not None else "not described in docs/deployment.md or docs/scenarios.md",
                editable=key in EDITABLE, raw=value))
    return listed


def changes_from_form(form: Mapping[str, str]) -> tuple[dict[str, Any], str]:
    """The settings a Parameters form asks for, as the settings file holds them, or a sentence saying which field
    is not a value at all (a value that is one but not acceptable is overrides.problem's to refuse)."""
    changes: dict[str, Any] = {}
    for key, field in EDITABLE.items():
        if field not in form:
            continue
        text = form[field].strip()[:MAX_FIELD_CHARS]
        if key == "car.home_landing":
            if not (text.isascii() and text.isdigit() and len(text) <= 3):
                return {}, f"{key}: must be a landing index, a whole number (got {text[:40]!r})"
            changes["home_landing"] = int(text)
        elif key == "car.permissions_enabled":
            if text not in ("true", "false"):
                return {}, f"{key}: must be true or false (got {text[:40]!r})"
            changes["permissions_enabled"] = text == "true"
        else:
            words = [word.strip() for word in text.replace(",", " ").split()]
            if not all(word.isascii() and word.isdigit() and len(word) <= 3 for word in words):
                return {}, f"{key}: must be landing indices separated by commas, e.g. 0, 2 (got {text[:40]!r})"
            changes["free_landings"] = sorted({int(word) for word in words})
    if not changes:
        return {}, "nothing to change: the form named no setting"
    return changes, ""
