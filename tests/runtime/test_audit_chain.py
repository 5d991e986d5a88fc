"""The maintenance record's chain, checked with no file: each way of editing it is named, by sequence and line."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carctl.runtime.audit_chain import (GENESIS, MAX_LINE_BYTES, canonical_line, digest, make_record, parse_record,
                                        verify)


def chain(count: int, first_seq: int = 1, prev: str = GENESIS, start_s: float = 1_796_000_000.0) -> list[bytes]:
    """``count`` chained lines, as the writer makes them."""
    lines = []
    for seq in range(first_seq, first_seq + count):
        line = canonical_line(make_record(seq, prev, start_s + seq, "mode_switch", "car_key",
                                          "car-top inspection switch", {"switch": "inspection", "to": "on"}))
        lines.append(line)
        prev = digest(line)
    return lines


def log(lines: list[bytes]) -> list[tuple[str, bytes]]:
    return [("audit.log", b"".join(line + b"\n" for line in lines))]


def test_an_untouched_chain_is_intact_and_names_its_last_hash() -> None:
    lines = chain(5)
    verdict = verify(log(lines))
    assert verdict.intact and verdict.problem == "" and verdict.torn == ""
    assert (verdict.records, verdict.first_seq, verdict.last_seq) == (5, 1, 5)
    assert verdict.last_hash == digest(lines[-1])
    assert verify([("audit.log", b"")]).intact


def test_an_edited_record_is_named() -> None:
    lines = chain(6)
    edited = json.loads(lines[2])
    edited["details"]["to"] = "off"
    lines[2] = canonical_line(edited)
    verdict = verify(log(lines))
    assert not verdict.intact
    assert verdict.problem == ("record 3 (audit.log line 3) was changed: record 4 carries another hash of it")
    assert verdict.last_seq == 2  # whole up to the record before


def test_an_edit_of_the_hash_a_record_carries_names_that_record() -> None:
    lines = chain(6)
    edited = json.loads(lines[3])
    edited["prev"] = "1" * 64
    lines[3] = canonical_line(edited)
    verdict = verify(log(lines))
    assert verdict.problem.startswith("record 4 (audit.log line 4) was changed")


def test_a_removed_record_is_named() -> None:
    lines = chain(6)
    del lines[3]
    verdict = verify(log(lines))
    assert verdict.problem == "record 4 removed (between audit.log line 3 and audit.log line 4)"


def test_a_reordered_pair_is_named() -> None:
    lines = chain(6)
    lines[2], lines[3] = lines[3], lines[2]
    verdict = verify(log(lines))
    assert verdict.problem == "records are out of order: record 4 (audit.log line 3) comes before record 3"


@pytest.mark.parametrize("at", [2, 5])
def test_an_inserted_record_is_named(at: int) -> None:
    lines = chain(6)
    # A forged record made by someone who knows the format: it carries the right hash of the one before it.
    forged = canonical_line(make_record(at + 1, digest(lines[at - 1]), 1_796_000_100.0, "fault_reset", "car_key",
                                        "fault reset key", {"faults_before": [], "cleared": []}))
    lines.insert(at, forged)
    verdict = verify(log(lines))
    assert verdict.problem == f"a record was inserted at audit.log line {at + 1} (sequence {at + 1} twice)"


def test_a_copy_of_an_old_record_inserted_later_is_named() -> None:
    lines = chain(6)
    lines.insert(5, lines[1])
    verdict = verify(log(lines))
    assert verdict.problem == "a record was inserted at audit.log line 6: record 2 again (first at audit.log line 2)"


def test_a_line_that_is_not_a_record_is_named() -> None:
    lines = chain(4)
    lines[1] = b"hello"
    assert verify(log(lines)).problem == "audit.log line 2 is not a record"


def test_a_torn_last_line_is_torn_not_tampering() -> None:
    lines = chain(4)
    data = b"".join(line + b"\n" for line in lines)
    cut = data[:-40]  # the last record's write cut short
    verdict = verify([("audit.log", cut)])
    assert verdict.intact and verdict.last_seq == 3
    assert verdict.torn.startswith("audit.log line 4 is torn")


def test_a_new_log_whose_first_write_was_cut_short_is_torn_and_garbage_at_the_end_is_not() -> None:
    verdict = verify([("audit.log", chain(1)[0][:50])])
    assert verdict.intact and verdict.records == 0 and verdict.torn.startswith("audit.log line 1 is torn")
    lines = chain(3)
    verdict = verify([("audit.log", b"".join(line + b"\n" for line in lines) + b"rm -rf the evidence")])
    assert not verdict.intact and verdict.problem == "audit.log line 4 is not a record" and verdict.last_seq == 3


def test_a_cut_in_the_middle_of_the_log_is_tampering() -> None:
    first, second = chain(2), chain(2, 3)
    data = first[0] + b"\n" + first[1][:30]
    # A torn line followed by more lines is not a write cut short: the log went on after it.
    verdict = verify([("audit.log.1", data), ("audit.log", b"".join(line + b"\n" for line in second))])
    assert not verdict.intact and "audit.log.1 line 2 is cut short" in verdict.problem


def test_the_chain_runs_through_the_rotated_file() -> None:
    lines = chain(7)
    old, new = lines[:4], lines[4:]
    verdict = verify([("audit.log.1", b"".join(line + b"\n" for line in old)),
                      ("audit.log", b"".join(line + b"\n" for line in new))])
    assert verdict.intact and (verdict.first_seq, verdict.last_seq) == (1, 7)
    # The current file alone begins at a record whose predecessor was rotated out: intact from there.
    assert verify([("audit.log", b"".join(line + b"\n" for line in new))]).intact
    # A rotated file swapped for another chain's: the current file's first record does not follow it.
    other = chain(4, start_s=1_796_500_000.0)
    verdict = verify([("audit.log.1", b"".join(line + b"\n" for line in other)),
                      ("audit.log", b"".join(line + b"\n" for line in new))])
    assert verdict.problem == "record 4 (audit.log.1 line 4) was changed: record 5 carries another hash of it"


@pytest.mark.parametrize("data", [b"\x00\x01\x02", b"not json at all\n", b'{"seq": 1}\n', b"[1,2,3]\n",
                                  b"\xff\xfe\n" * 10, b"{" * 5000 + b"\n", b"x" * (MAX_LINE_BYTES * 3),
                                  b"\n" * 1_000_000, b'{"action":"x"}\n' * 3])
def test_garbage_is_not_an_audit_log(data: bytes) -> None:
    with pytest.raises(ValueError, match="is not a carctl audit log"):
        verify([("audit.log", data)])


@pytest.mark.parametrize("change", [
    {"seq": 0}, {"seq": True}, {"seq": 1.0}, {"t": -1}, {"t": 2.0**40}, {"action": "coffee"}, {"via": "ghost"},
    {"prev": "g" * 64}, {"prev": "0" * 63}, {"who": "x" * 500}, {"details": []}, {"extra": 1},
])
def test_a_record_of_the_wrong_shape_is_not_a_record(change: dict[str, object]) -> None:
    record = json.loads(chain(1)[0])
    record.update(change)
    assert parse_record(canonical_line(record)) is None


@pytest.mark.parametrize("details", [
    {"changes": {"free_landings": {"from": None, "to": list(range(1000))}}},  # too long
    {"changes": {"free_landings": {"from": [0] * 700, "to": [0] * 700}}},  # short, but too many values
    {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}},  # too deep
])
def test_details_no_record_may_hold_are_replaced_by_their_size_and_hash(details: dict[str, object]) -> None:
    record = make_record(1, GENESIS, 0.0, "parameter_change", "platform", "c\x07md", details)
    assert set(record["details"]) == {"too_long_bytes", "sha256"}
    assert record["details"]["sha256"] == digest(canonical_line(details))
    assert record["who"] == "c?md"  # a control character from outside never reaches the file
    assert parse_record(canonical_line(record)) == record


@pytest.mark.fuzz
@given(st.lists(st.one_of(st.binary(max_size=200), st.sampled_from(chain(6)),
                          st.builds(lambda line, cut: line[:cut], st.sampled_from(chain(6)), st.integers(0, 300))),
                max_size=12),
       st.booleans())
def test_fuzz_any_lines_are_checked_or_refused_never_raised(lines: list[bytes], end_with_newline: bool) -> None:
    data = b"\n".join(lines) + (b"\n" if end_with_newline else b"")
    try:
        verdict = verify([("audit.log", data)])
    except ValueError as refusal:
        assert "is not a carctl audit log" in str(refusal)
        return
    # Only the untouched chain, or a prefix of it, is intact.
    if verdict.intact and verdict.records:
        assert verdict.last_seq - verdict.first_seq + 1 == verdict.records


@pytest.mark.parametrize(("clock_s", "written"), [
    (2.0**32 + 3600.0, 2.0**32), (-5.0, 0.0), (float("inf"), 2.0**32), (float("-inf"), 0.0), (float("nan"), 0.0)])
def test_a_clock_outside_1970_to_2106_is_written_as_the_nearest_end(clock_s: float, written: float) -> None:
    record = make_record(1, GENESIS, clock_s, "alarm_reset", "car_key", "alarm reset key", {})
    assert record["t"] == written and parse_record(canonical_line(record)) == record


def declaration(seq: int, prev: str, unwritten: object, action: str = "records_unwritten") -> bytes:
    return canonical_line(make_record(seq, prev, 1_796_000_100.0, action, "controller", "audit log",
                                      {"after_seq": 2, "unwritten": unwritten}))


def test_numbers_skipped_after_a_power_cut_are_a_gap_only_when_declared_exactly() -> None:
    lines = chain(2)
    declared = declaration(40, digest(lines[-1]), [3, 39])
    after = chain(1, first_seq=41, prev=digest(declared))
    verdict = verify([("audit.log", b"\n".join([*lines, declared, *after]) + b"\n")])
    assert verdict.intact and (verdict.records, verdict.last_seq) == (4, 41), verdict.problem
    for wrong in (declaration(40, digest(lines[-1]), [4, 39]), declaration(40, digest(lines[-1]), [3, 38]),
                  declaration(40, GENESIS, [3, 39]), declaration(40, digest(lines[-1]), [3, 39], "mode_switch"),
                  declaration(40, digest(lines[-1]), [3, True]), declaration(40, digest(lines[-1]), "3-39")):
        verdict = verify([("audit.log", b"\n".join([*lines, wrong]) + b"\n")])
        assert not verdict.intact and "removed" in verdict.problem, wrong
