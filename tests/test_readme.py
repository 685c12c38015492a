"""The README's quickstart stays true: CI runs exactly its test command."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert command in (ROOT / "README.md").read_text()


def test_readme_documents_every_report_column():
    from splitnet.framework.report import COLUMNS

    readme = (ROOT / "README.md").read_text()
    for column in COLUMNS:
        assert f"| {column} |" in readme, column
