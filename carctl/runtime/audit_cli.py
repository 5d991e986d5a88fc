"""`carctl audit verify | show`: the technician's check of the maintenance record (docs/audit.md).

Rules of this module:
- Exit codes: 0 the chain is intact (a torn last line, a write cut short, is said but is not tampering), 1 it has been
  tampered with (the first changed, inserted, reordered or removed record is named by sequence and line), 2 bad input
  (no such file, not a file, unreadable, too large, not an audit log, a bad configuration), with one sentence on
  stderr and never a traceback.
- The rotated file `<file>.1`, when there is one, is read first: the chain runs through both.
- Files are read bounded (the largest log the configuration allows, with room), as regular files only: a FIFO or a
  device is refused, never waited on.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path
from typing import Any

from carctl.filein import NotARegularFile, read_bounded
from carctl.runtime.audit_chain import Verdict, parse_record, parts_of, verify
from carctl.runtime.audit_log import ROTATED_SUFFIX
from carctl.runtime.config import RuntimeSection

EXIT_INTACT = 0
EXIT_TAMPERED = 1
EXIT_BAD_INPUT = 2
# The largest file runtime.audit_log_max_bytes allows, and a record beyond it.
MAX_FILE_BYTES = int(RuntimeSection.RANGES["audit_log_max_bytes"].high) + 8192


class BadInput(Exception):
    """One sentence naming the problem."""


def add_parser(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    audit = commands.add_parser("audit", help="check or show the maintenance record (runtime.audit_log)")
    actions = audit.add_subparsers(dest="audit_command", required=True, parser_class=parser_class)
    for name, help_text in (("verify", "check the hash chain: 0 intact, 1 tampered, 2 bad input"),
                            ("show", "print the records readably")):
        action = actions.add_parser(name, help=help_text)
        where = action.add_mutually_exclusive_group()
        where.add_argument("--file", type=Path, help=f"the record (default: {RuntimeSection().audit_log})")
        where.add_argument("--config", type=Path, help="the firmware configuration naming runtime.audit_log")
        if name == "show":
            action.add_argument("--json", action="store_true", help="the records as JSON lines")


def run(args: argparse.Namespace) -> int:
    try:
        path = _log_path(args.file, args.config)
        files = _read(path)
        if args.audit_command == "show":
            return _show(files, args.json)
        verdict = verify(files)
    except BadInput as problem:
        print(f"carctl audit: error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ValueError as problem:  # nothing in the files is a record
        print(f"carctl audit: error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return _report(verdict, [name for name, _ in files])


def _log_path(file: Path | None, config: Path | None) -> Path:
    if file is not None:
        return file
    if config is None:
        return Path(RuntimeSection().audit_log)
    from carctl.runtime import config as firmware_config

    try:
        runtime = firmware_config.load(config).runtime
    except (firmware_config.FirmwareConfigError, OSError) as error:
        message = str(error)
        raise BadInput(message if str(config) in message else f"{config}: {message}") from None
    if not runtime.audit_log:
        raise BadInput(f"{config}: runtime.audit_log is empty: this configuration keeps no maintenance record")
    return Path(runtime.audit_log)


def _read(path: Path) -> list[tuple[str, bytes]]:
    """(name, contents) of the rotated file, if any, then the file itself."""
    files = []
    rotated = Path(str(path) + ROTATED_SUFFIX)
    for candidate, required in ((rotated, False), (path, True)):
        try:
            files.append((str(candidate), read_bounded(candidate, MAX_FILE_BYTES)))
        except FileNotFoundError:
            if required:
                raise BadInput(f"{candidate}: no such file (has the firmware run with runtime.audit_log set?)") \
                    from None
        except NotARegularFile as refusal:
            raise BadInput(str(refusal)) from None
        except OSError as error:
            raise BadInput(f"{candidate} cannot be read ({error.strerror or error})") from None
    return files


def _report(verdict: Verdict, names: list[str]) -> int:
    where = " and ".join(names)
    if not verdict.intact:
        print(f"tampered: {verdict.problem}; the chain is whole up to record {verdict.last_seq} ({where})")
        return EXIT_TAMPERED
    if verdict.records:
        print(f"intact: {verdict.records} records, {verdict.first_seq} to {verdict.last_seq} ({where}); the last "
              f"record's hash {verdict.last_hash} should match the platform's copy")
    else:
        print(f"intact: no records yet ({where})")
    if verdict.torn:
        print(f"note: {verdict.torn}")
    return EXIT_INTACT


def _show(files: list[tuple[str, bytes]], as_json: bool) -> int:
    shown = 0
    for name, data in files:
        parts = parts_of(name, data)
        for number, part in enumerate(parts, start=1):
            if number == len(parts) and not part:
                break  # the file ends with its newline
            record = parse_record(part)
            if record is None:
                print(f"{name} line {number}: not a record" + ("" if number < len(parts) else " (torn)"))
                continue
            shown += 1
            if as_json:
                print(json.dumps(record, sort_keys=True))
                continue
            # parse_record() has checked every field printed here: its type, a time within 1970-2106.
            when = datetime.datetime.fromtimestamp(float(record["t"])).isoformat(sep=" ", timespec="seconds")
            details = json.dumps(record["details"], sort_keys=True, ensure_ascii=True)
            print(f"{record['seq']:>6}  {when}  {record['action']:16}  {record['via']:12}  {record['who']!r}  "
                  f"{details}")
    if not shown and any(data for _, data in files):
        raise BadInput(f"{files[0][0]} is not a carctl audit log (no line is a record)")
    return EXIT_INTACT
