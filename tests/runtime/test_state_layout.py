"""The files a configuration has the firmware and the service tool write, as `carctl run --check` lists them."""

from pathlib import Path

from carctl.runtime.config import load
from carctl.runtime.state_layout import written_files

SIM_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "sim.toml"


def _config_with_service(tmp_path: Path) -> Path:
    text = SIM_CONFIG.read_text().replace("[processes]\n", "[processes]\nservice = true\n")
    text += f'\n[platform]\noverrides_path = "{tmp_path}/overrides.json"\n'
    text += f'\n[service]\nusers_file = "{tmp_path}/users.json"\nlisten = "127.0.0.1:0"\n'
    path = tmp_path / "my-sim.toml"
    path.write_text(text)
    return path


def test_the_service_tool_s_overrides_file_is_listed_with_the_platform_link_off(tmp_path: Path) -> None:
    files = {file.key: file.path for file in written_files(load(_config_with_service(tmp_path)))}
    assert files["platform.overrides_path"] == f"{tmp_path}/overrides.json"
    assert files["service.users_file"] == f"{tmp_path}/users.json"


def test_the_simulator_s_own_configuration_writes_nothing_machine_wide() -> None:
    assert [file.key for file in written_files(load(SIM_CONFIG))] == []
