"""The refusal a person should get from any command for bad input: exit code 2 (never 1, which `carctl sim` uses for a
safety violation), one line on stderr that names the key, option or file, and no traceback."""

from __future__ import annotations

import subprocess


def assert_refused(result: subprocess.CompletedProcess[str], named: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], result.stderr
