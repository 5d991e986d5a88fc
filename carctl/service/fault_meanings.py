"""Each fault's meaning and reset rule for the fault log page, read from the documentation at start: the condition
column of docs/faults.md and the reset column of docs/fault-remedies.md, so the page and the manual never disagree
and nothing is written twice. The documents are the checkout's (the board runs the checkout, docs/installation.md);
where they are missing or a fault is not in them, the page says where to look instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from carctl.filein import read_bounded

DOCS = Path(__file__).resolve().parents[2] / "docs"
MAX_DOC_BYTES = 1024 * 1024
# | 31 | `overspeed` | 4 | yes | speed at or above 110 % of rated ... |: the code and the fault begin a row.
_ROW_START = re.compile(r"^\| *\d{1,3} *\| *`[a-z_]+` *\|")
_MARKUP = re.compile(r"[`*]")
# A reference to the source ("(carctl/core/brake.py)") is for the engineer reading the manual, not for the technician
# reading the page: dropped, bracket and all, should one be written into the table again.
_SOURCE_REFERENCE = re.compile(r" ?\([^()]*\b(?:carctl|sim|tests|hil_tests)/[\w/]+\.py[^()]*\)")


@dataclass(frozen=True, slots=True)
class FaultMeaning:
    code: int
    fault: str
    meaning: str
    reset: str


def _rows(path: Path) -> list[tuple[str, ...]]:
    try:
        text = read_bounded(path, MAX_DOC_BYTES).decode("utf-8", "replace")
    except OSError:
        return []
    rows = []
    for line in text.splitlines():
        if _ROW_START.match(line):
            rows.append(tuple(_MARKUP.sub("", cell).strip() for cell in line.strip().strip("|").split("|")))
    return rows


def load(docs: Path = DOCS) -> dict[str, FaultMeaning]:
    """By fault name: its meaning (docs/faults.md's condition) and reset rule (docs/fault-remedies.md)."""
    resets = {row[1]: row[3] for row in _rows(docs / "fault-remedies.md") if len(row) >= 4}
    meanings = {}
    for row in _rows(docs / "faults.md"):
        if len(row) < 5:
            continue
        code, fault, latched, condition = row[0], row[1], row[3], _SOURCE_REFERENCE.sub("", "|".join(row[4:]))
        reset = resets.get(fault) or ("the maintenance key" if latched == "yes" else "automatic")
        meanings[fault] = FaultMeaning(int(code), fault, condition, reset)
    return meanings


def unknown(fault: str) -> FaultMeaning:
    return FaultMeaning(0, fault, "see docs/faults.md", "see docs/fault-remedies.md")
