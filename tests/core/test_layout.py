"""The core's layout keeps the rules a newcomer relies on to find things (docs/architecture.md)."""

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).parent.parent.parent / "carctl" / "core"
MODULES = sorted(path for path in CORE.glob("*.py") if path.name != "__init__.py")


@pytest.mark.parametrize("path", MODULES, ids=[path.stem for path in MODULES])
def test_each_module_is_small_and_states_its_rules(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 400
    docstring = ast.get_docstring(ast.parse(text))
    assert docstring is not None and "Rules of this module:" in docstring


def test_only_the_mode_table_and_the_mode_changes_name_a_mode() -> None:
    """The rest of the core asks ModeRules (modes.py); a state's defaults may name the mode it starts in."""
    for path in MODULES:
        if path.name in ("modes.py", "signals.py", "state.py"):
            continue
        assert "Mode." not in path.read_text(encoding="utf-8"), path.name


def test_the_core_imports_only_the_standard_library_and_itself() -> None:
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                top = node.module.split(".")[0]
                assert top in ("carctl", "__future__") or top in _STDLIB, (path.name, node.module)
                if top == "carctl":
                    assert node.module.startswith("carctl.core"), (path.name, node.module)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.split(".")[0] in _STDLIB, (path.name, alias.name)


_STDLIB = {"abc", "bisect", "collections", "dataclasses", "enum", "math", "reprlib", "typing"}
