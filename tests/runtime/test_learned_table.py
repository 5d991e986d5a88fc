"""The learned landing table on disk (carctl/runtime/learned_table.py): written whole, read back only when sound."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from carctl.core.config import ControllerConfig
from carctl.core.learned import LearnedTable
from carctl.core.signals import Event, EventKind
from carctl.runtime import learned_table
from carctl.runtime.learned_table import LandingTable, encode, parse, read, startup, write

TABLE = LearnedTable(landings_m=(0.0, 2.927, 5.782, 8.712, 11.591, 14.515),
                     vane_edges_m=((None, 0.2), (2.727, 3.127), (5.582, 5.982), (8.512, 8.912), (11.391, 11.791),
                                   (14.315, None)),
                     switch_edges=(("bottom.0", "off", 1.0), ("top.0", "on", 13.515)))
WHEN = "2026-12-02T21:50:00Z"


def test_a_table_written_reads_back_the_same(tmp_path: Path) -> None:
    path = tmp_path / "learned.json"
    write(path, TABLE, WHEN)
    record = read(path)
    assert record is not None and record.table == TABLE and record.learned_at == WHEN
    assert path.stat().st_mode & 0o777 == 0o640
    assert not [name for name in tmp_path.iterdir() if name != path]  # no temporary left beside it


def test_no_file_is_nothing_learned_yet(tmp_path: Path) -> None:
    assert read(tmp_path / "absent.json") is None
    config, source, problem = startup(ControllerConfig(), str(tmp_path / "absent.json"))
    assert config == ControllerConfig() and source == "typed" and problem == ""


def test_the_checksum_catches_an_edited_height() -> None:
    record = json.loads(encode(TABLE, WHEN))
    record["landings_m"][2] = 5.8
    with pytest.raises(ValueError, match="sha256 does not match"):
        parse(json.dumps(record).encode())


@pytest.mark.parametrize("data", [
    b"",
    b"\x00\xff garbage",
    b"{",
    b"[]",
    b'{"version": 1}',
    b"{" * 10_000,
    b"1e999",
    b'{"version": 1, "learned_at": "x", "landings_m": [NaN], "vane_edges_m": [], "switch_edges": [], "sha256": "0"}',
])
def test_garbage_is_refused_with_a_reason(data: bytes) -> None:
    with pytest.raises(ValueError):
        parse(data)


def test_a_torn_file_is_refused() -> None:
    data = encode(TABLE, WHEN)
    for cut in (1, len(data) // 3, len(data) // 2, len(data) - 3):
        with pytest.raises(ValueError):
            parse(data[:cut])


def test_wrong_version_bad_date_and_non_increasing_landings_are_refused() -> None:
    def resigned(**changes: object) -> bytes:
        record = json.loads(encode(TABLE, WHEN))
        record.update(changes)
        record["sha256"] = learned_table._checksum(record)
        return json.dumps(record).encode()

    parse(resigned())  # re-signed unchanged: still sound
    with pytest.raises(ValueError, match="version"):
        parse(resigned(version=2))
    with pytest.raises(ValueError, match="learned_at"):
        parse(resigned(learned_at="yesterday"))
    with pytest.raises(ValueError, match="increasing"):
        parse(resigned(landings_m=[0.0, 2.9, 2.9, 8.7, 11.6, 14.5]))
    with pytest.raises(ValueError, match="height"):
        parse(resigned(landings_m=[0.0, 2.9, True, 8.7, 11.6, 14.5]))
    with pytest.raises(ValueError, match="switch_edges"):
        parse(resigned(switch_edges=[["middle.0", "on", 1.0]]))


def test_a_huge_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "learned.json"
    path.write_bytes(b" " * (learned_table.MAX_FILE_BYTES + 1))
    with pytest.raises(OSError):
        read(path)
    config, source, problem = startup(ControllerConfig(), str(path))
    assert source == "typed" and problem


def test_a_symbolic_link_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    write(target, TABLE, WHEN)
    link = tmp_path / "learned.json"
    link.symlink_to(target)
    with pytest.raises(OSError):
        read(link)
    config, source, problem = startup(ControllerConfig(), str(link))
    assert config == ControllerConfig() and source == "typed" and str(link) in problem


def test_startup_uses_a_sound_table_and_refuses_one_that_does_not_fit(tmp_path: Path) -> None:
    path = tmp_path / "learned.json"
    write(path, TABLE, WHEN)
    config, source, problem = startup(ControllerConfig(), str(path))
    assert config.building.landings_m == TABLE.landings_m and source == f"learned {WHEN}" and problem == ""
    four = ControllerConfig().building.__class__(landings_m=(0.0, 2.9, 5.8, 8.7), population=(0, 5, 5, 5))
    config, source, problem = startup(ControllerConfig(building=four), str(path))
    assert config.building == four and source == "typed" and "does not fit" in problem
    path.write_bytes(b'{"torn')
    config, source, problem = startup(ControllerConfig(), str(path))
    assert config == ControllerConfig() and source == "typed" and problem


def test_the_loop_side_takes_a_learned_table_once_and_writes_it(tmp_path: Path) -> None:
    path = tmp_path / "learned.json"
    table = LandingTable(ControllerConfig(), str(path))
    assert table.source == "typed"
    assert table.take(TABLE, (Event(EventKind.LEARNING, 5, -1, "started"),)) is None  # not at its end
    done = (Event(EventKind.LEARNING, 9, -1, "done:0.0000,2.9270,5.7820,8.7120,11.5910,14.5150"),)
    config = table.take(TABLE, done)
    table.close()
    assert config is not None and config.building.landings_m == TABLE.landings_m
    assert table.source.startswith("learned ") and table.health()["landing_table_problem"] is None
    record = read(path)
    assert record is not None and record.table == TABLE


def test_each_learned_table_is_held_to_the_typed_heights_not_to_the_last_learned_one(tmp_path: Path) -> None:
    """Two runs, each within the tolerance of the table before it, must not walk a landing away from its typed
    height: the second is judged against the typed table."""
    table = LandingTable(ControllerConfig(), str(tmp_path / "learned.json"))
    first = LearnedTable(landings_m=(0.0, 3.04, 5.8, 8.7, 11.6, 14.5), vane_edges_m=TABLE.vane_edges_m)
    second = LearnedTable(landings_m=(0.0, 3.18, 5.8, 8.7, 11.6, 14.5), vane_edges_m=TABLE.vane_edges_m)
    done = (Event(EventKind.LEARNING, 9, -1, "done:"),)
    assert table.take(first, done) is not None
    assert table.take(second, done) is None and "learned_tolerance_m" in str(table.health()["landing_table_problem"])
    table.close()
    assert table.config.building.landings_m == first.landings_m


def test_the_loop_side_reports_a_table_it_cannot_write(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_bytes(b"")
    table = LandingTable(ControllerConfig(), str(tmp_path / "not-a-dir" / "learned.json"))
    done = (Event(EventKind.LEARNING, 9, -1, "done:0"),)
    assert table.take(TABLE, done) is not None  # in force at once, whatever the disk says
    table.close()
    assert table.write_errors == 1 and "not written" in str(table.health()["landing_table_problem"])


def _board_config(tmp_path: Path, table_path: Path) -> Path:
    board = (Path(__file__).parent.parent.parent / "configs" / "board.toml").read_text(encoding="utf-8")
    config = tmp_path / "board.toml"
    config.write_text(board.replace('learned_table = "/var/lib/carctl/learned_landings.json"',
                                    f'learned_table = "{table_path}"'), encoding="utf-8")
    return config


def test_carctl_learned_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from carctl.cli import main

    table_path = tmp_path / "learned.json"
    config = _board_config(tmp_path, table_path)
    assert main(["learned", "show", "--config", str(config)]) == 0
    assert "no learned table" in capsys.readouterr().out
    write(table_path, TABLE, WHEN)
    assert main(["learned", "show", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert WHEN in out and "+27.0" in out and "-18.0" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()[:1].isdigit()}
    assert rows["0"][-2:] == ["-", "0.2000"] and rows["1"][-2:] == ["2.7270", "3.1270"]  # the vane edges, in text
    assert rows["5"][-2:] == ["14.3150", "-"] and "switch top.0 on at 13.5150 m" in out
    assert main(["learned", "show", "--config", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["used"] == f"learned {WHEN}"
    table_path.write_bytes(encode(TABLE, WHEN)[:-40])  # torn
    assert main(["learned", "show", "--config", str(config)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "refused" in error and "typed table" in error
    assert main(["learned", "show", "--config", str(tmp_path / "absent.toml")]) == 2
    with pytest.raises(SystemExit) as exit_:
        main(["learned", "show"])
    assert exit_.value.code == 2
