"""The layer contract is a test: import-linter on the source tree, and proof that it catches a breach."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import lint_imports  # noqa: E402  (tools/ is not a package)


def _copy_sources(into: Path) -> Path:
    """The repository's packages and pyproject.toml, to break one import in a copy."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for folder in config["package-dir"].values():
        shutil.copytree(ROOT / folder, into / folder, ignore=shutil.ignore_patterns("__pycache__", ".work"))
    shutil.copy2(ROOT / "pyproject.toml", into / "pyproject.toml")
    return into


def test_every_layer_contract_is_kept():
    result = lint_imports.lint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout and "KEPT" in result.stdout


@pytest.mark.parametrize(
    ("file", "line", "contract", "chain"),
    [
        (
            "framework/errors.py",
            "from ..strategies import deploy",
            "One-way layers",
            "splitnet.framework.errors -> splitnet.strategies",
        ),
        (
            "runtime/recovery.py",
            "from ..framework.compile import compile_part",
            "The runtime runs artifacts",
            "splitnet.runtime.recovery -> splitnet.framework.compile",
        ),
        ("runtime/placement.py", "from ..zoo import load_reference", "Only the partitioners", "splitnet.zoo"),
        ("strategies/deploy.py", "from ..training import train", "One-way layers", "splitnet.training"),
        ("training/store.py", "from ..commands import cli", "One-way layers", "splitnet.commands"),
    ],
)
def test_a_forbidden_import_breaks_a_contract(tmp_path, file, line, contract, chain):
    copy = _copy_sources(tmp_path)
    path = copy / file
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    result = lint_imports.lint(copy)
    assert result.returncode == 1, result.stdout
    broken = [row for row in result.stdout.splitlines() if row.endswith("BROKEN")]
    assert any(contract in row for row in broken), result.stdout
    assert chain in result.stdout


def test_the_cli_root_only_wires_the_commands():
    from splitnet.commands.cli import COMMANDS, build_parser

    assert len((ROOT / "commands" / "cli.py").read_text().splitlines()) < 100
    assert set(COMMANDS) == {"run", "boards", "models", "tune", "train", "distill", "accuracy", "compare", "setup"}
    for name, module in COMMANDS.items():
        assert module.SUMMARY and callable(module.add_arguments) and callable(module.execute)
        assert build_parser(name).prog.startswith("splitrun")


def test_the_folder_graph_has_no_cycles():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "import_graph.py")], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().endswith("0 cycles"), result.stdout
    assert "framework ->" not in result.stdout  # the core imports nothing of splitnet
