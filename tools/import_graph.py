"""Print which splitnet folders import which, read from the source tree alone.

    python tools/import_graph.py [REPO]

Each ``splitnet.X`` package lives in a top-level folder (``[tool.setuptools] package-dir`` in
``pyproject.toml``); this reads every ``.py`` file of those folders, resolves absolute and
relative imports of ``splitnet.*`` (module-level and inside functions alike) to the folder
they land in, and prints one line per folder pair with the number of import statements,
marking pairs that import each other. It needs no install, so it reads an old checkout as
well as this one; the layer contract itself is checked by import-linter (``lint-imports``,
run by ``tests/test_layers.py``).
"""

from __future__ import annotations

import ast
import sys
import tomllib
from collections import Counter
from pathlib import Path


def folders(repo: Path) -> dict[str, Path]:
    """``splitnet`` subpackage name -> its folder (``splitnet`` itself -> ``splitnet/``)."""
    config = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = config.get("package-dir", {})
    return {name.removeprefix("splitnet.") or "splitnet": repo / path for name, path in mapping.items()}


def _target(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "splitnet":
        return None
    return parts[1] if len(parts) > 1 else "splitnet"


def imports_of(path: Path, package: list[str]) -> list[str]:
    """The splitnet modules a file imports (``package``: the file's own package path)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                found.append(".".join([*base, *([node.module] if node.module else [])]))
            elif node.module:
                found.append(node.module)
    return found


def edges(repo: Path) -> Counter:
    counts: Counter = Counter()
    for name, folder in folders(repo).items():
        own = ["splitnet"] if name == "splitnet" else ["splitnet", name]
        for path in sorted(folder.rglob("*.py")):
            package = own + list(path.relative_to(folder).parent.parts)
            for module in imports_of(path, package):
                target = _target(module)
                if target and target != name and target in folders(repo):
                    counts[(name, target)] += 1
    return counts


def main(argv: list[str]) -> int:
    repo = Path(argv[1] if len(argv) > 1 else Path(__file__).resolve().parents[1])
    counts = edges(repo)
    for (source, target), count in sorted(counts.items()):
        cycle = "  <-> cycle" if (target, source) in counts else ""
        print(f"{source:>13} -> {target:<13} {count:3d}{cycle}")
    cycles = sum((b, a) in counts for a, b in counts) // 2
    print(f"{len(counts)} folder pairs, {cycles} cycles")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
