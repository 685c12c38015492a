"""Check the layer contract (``[tool.importlinter]`` in pyproject.toml) on this source tree.

    python tools/lint_imports.py

import-linter (through grimp) finds a package's modules by walking the folder of its
top-level package. splitnet's subpackages live in top-level folders mapped by setuptools'
``package-dir`` (``splitnet.runtime`` is ``runtime/``), which that walk cannot see, so a bare
``lint-imports`` stops at "Missing layer". This lays the ``.py`` files out as setuptools
installs them (``splitnet/runtime/...``) in a temporary folder, puts it first on the path,
and runs ``lint-imports`` with the repository's own configuration. Exit status: 0 when
every contract is kept, 1 when one is broken, with import-linter's report of each
offending import chain. ``tests/test_layers.py`` runs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))  # import-linter's console script


def installed_layout(repo: Path, into: Path) -> Path:
    """Copy every package's ``.py`` files to where setuptools installs them; returns ``into``."""
    config = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]
    for package, folder in config["package-dir"].items():
        source = repo / folder
        target = into.joinpath(*package.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for path in source.glob("*.py"):  # subpackages are listed in package-dir themselves
            shutil.copy2(path, target / path.name)
    return into


def lint(repo: Path = ROOT, extra: list[str] | None = None) -> subprocess.CompletedProcess:
    """``lint-imports`` on ``repo``'s sources laid out as installed (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="splitnet-layers-") as tmp:
        layout = installed_layout(repo, Path(tmp))
        env = {**os.environ, "PYTHONPATH": str(layout)}
        # import-linter puts its working folder first on the path: run it in the layout.
        command = [LINT_IMPORTS, str(repo / "pyproject.toml"), "--no-cache", "--no-logo", *(extra or [])]
        return subprocess.run(command, cwd=layout, env=env, capture_output=True, text=True, check=False)


def main() -> int:
    result = lint(extra=sys.argv[1:])
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
