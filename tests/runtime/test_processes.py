"""The process table: the face worker runs only when the community has the feature on."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

from carctl.adapters.drive import DriveLink, Endpoint
from carctl.adapters.panelbus import PanelBusMaster
from carctl.runtime.config import from_dict
from carctl.runtime.loop import ControlLoop, StructuredLog
from carctl.runtime.processes import ProcessTable

BASE = {"drive": {"endpoint": "tcp://127.0.0.1:1"}, "panel": {"port": "/dev/null"}}


def test_feature_off_means_no_worker_no_inbox_no_gallery(tmp_path: Path) -> None:
    config = from_dict({**BASE, "face": {"gallery_dir": str(tmp_path / "gallery"), "key_file": str(tmp_path / "key"),
                                         "source": str(tmp_path / "camera")}})
    log = StructuredLog(io.StringIO())
    table = ProcessTable(config, tmp_path / "board.toml", log)
    table.start()
    assert table.children == []
    loop = ControlLoop(config, DriveLink(Endpoint.parse("tcp://127.0.0.1:1"), 0.01), PanelBusMaster("/dev/null"),
                       log)
    assert loop.inbox is None
    assert not (tmp_path / "gallery").exists() and not (tmp_path / "key").exists()


def test_feature_on_starts_the_worker_at_lower_priority_and_restarts_it(tmp_path: Path) -> None:
    config_path = tmp_path / "board.toml"
    config_path.write_text(f'[drive]\nendpoint = "tcp://127.0.0.1:1"\n[panel]\nport = "/dev/null"\n'
                           f'[processes]\nface = true\n[face]\ngallery_dir = "{tmp_path}/g"\n'
                           f'key_file = "{tmp_path}/missing-key"\n')
    from carctl.runtime.config import load

    stream = io.StringIO()
    table = ProcessTable(load(config_path), config_path, StructuredLog(stream))
    table.start()
    try:
        assert [child.spec.name for child in table.children] == ["face"]
        process = table.children[0].process
        assert process is not None
        assert process.wait(timeout=60) == 3  # no key: the worker refuses to start; the car is not affected
        time.sleep(0.1)
        table.supervise()
        records = [json.loads(line) for line in stream.getvalue().splitlines()]
        assert [r["state"] for r in records] == ["started", "exited"]
        assert table.children[0].backoff_s == 2.0  # it will be tried again later, not in a tight loop
    finally:
        table.stop()
