"""The fault log page's Meaning column, read from docs/faults.md: in words a technician reads, never source paths."""

from pathlib import Path

from carctl.service.fault_meanings import load


def test_every_meaning_is_in_words_without_source_paths() -> None:
    meanings = load()
    assert len(meanings) >= 30
    for meaning in meanings.values():
        assert ".py" not in meaning.meaning, (meaning.fault, meaning.meaning)
    assert "0.06 s: three control cycles of 20 ms" in meanings["drive_stale"].meaning


def test_a_source_reference_written_into_the_table_again_is_left_off_the_page(tmp_path: Path) -> None:
    (tmp_path / "faults.md").write_text("| 11 | `drive_stale` | 4 | no | no fresh status (carctl/core/rates.py: 0.06 s)"
                                        "; the drive does not answer (docs/register-map.md) |\n")
    meaning = load(tmp_path)["drive_stale"]
    assert meaning.meaning == "no fresh status; the drive does not answer (docs/register-map.md)"
    assert meaning.reset == "automatic"


def test_every_reset_rule_reads_on_its_own_without_the_manual_around_it() -> None:
    """The Reset column is shown on the fault log page beside one record, not in the manual: a cell that points
    elsewhere in the document ("drive (see below)") tells the technician at the car nothing."""
    meanings = load()
    for meaning in meanings.values():
        assert not any(word in meaning.reset for word in ("see below", "see above", "below)", "above)")), \
            (meaning.fault, meaning.reset)
    assert "49" in meanings["drive_fault"].reset and "key" in meanings["drive_fault"].reset
