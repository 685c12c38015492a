"""Plug-ins: models and partitioners from installed packages, through Python entry points.

The example package (examples/splitnet-plugin-example) is installed for real with pip into a
temporary folder and run through ``splitrun`` in a subprocess with that folder on its path.
Broken plug-ins are fake distributions (a dist-info folder with an entry_points.txt) put on
this process's path.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ATOL_FP32, splitrun

from splitnet.framework.errors import SplitnetError
from splitnet.partitioners import list_partitioners
from splitnet.partitioners.registry import _PARTITIONERS
from splitnet.zoo import list_models
from splitnet.zoo.registry import _MODELS

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "splitnet-plugin-example"


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory) -> Path:
    """``pip install --no-deps --target DIR`` of the example, built from a copy (no build/ in the repo)."""
    work = tmp_path_factory.mktemp("plugin")
    source = shutil.copytree(EXAMPLE, work / "src")
    target = work / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return target


def _env(path: Path) -> dict:
    return {"PYTHONPATH": str(path)}


def test_pip_install_declares_both_entry_points(installed_example):
    (dist,) = installed_example.glob("splitnet_plugin_example-*.dist-info")
    text = (dist / "entry_points.txt").read_text()
    assert "[splitnet.models]" in text and "[splitnet.partitioners]" in text


def test_splitrun_models_lists_the_plugin_model_with_its_partitioner(installed_example, tmp_path):
    out = tmp_path / "models.json"
    result = splitrun("models", "--json", str(out), env=_env(installed_example), timeout=120)
    assert result.returncode == 0, result.stderr
    rows = {row["model"]: row for row in json.loads(out.read_text())}
    assert rows["scoped_net"]["family"] == "scoped_cnn" and rows["scoped_net"]["partitioner"] == "by_scope"
    assert rows["scoped_net"]["problem"] == "" and len(rows["scoped_net"]["branch_gflops"]) == 2
    assert "resnet18_v1" in rows and "vgg16" in rows  # the built-in models are still there


@pytest.mark.boards
def test_plugin_model_runs_end_to_end_through_splitrun(installed_example, tmp_path, no_leaked_boards):
    report = tmp_path / "report.json"
    result = splitrun(
        "--model",
        "scoped_net",
        "--branches",
        "2",
        "--runs",
        "2",
        "--warmup",
        "0",
        "--json",
        str(report),
        env=_env(installed_example),
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    assert data["ok"] and data["model"] == "scoped_net" and data["n"] == 2
    assert data["fidelity_max_abs_diff"] <= ATOL_FP32


def _fake_distribution(root: Path, name: str, entry_points: str, modules: dict[str, str] | None = None) -> Path:
    dist = root / f"{name.replace('-', '_')}-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(entry_points)
    for module, source in (modules or {}).items():
        (root / f"{module}.py").write_text(source)
    return root


@pytest.fixture
def fresh_registries():
    """Plug-ins are loaded once per process: make the next read look again, and forget after."""
    for registry in (_MODELS, _PARTITIONERS):
        registry.reset_plugins()
    yield
    for registry in (_MODELS, _PARTITIONERS):
        registry.reset_plugins()


@pytest.mark.parametrize(
    "entry,module,expected",
    [
        ("gone = no_such_module_xyz:specs", None, "ModuleNotFoundError: No module named 'no_such_module_xyz'"),
        ("wrong = wrong_kind_plugin:specs", "specs = 42\n", "expected a ModelSpec"),
        ("boom = boom_plugin:specs", "def specs():\n    raise RuntimeError('disk on fire')\n", "disk on fire"),
    ],
)
def test_a_broken_model_plugin_is_one_line_naming_distribution_and_entry_point(
    entry, module, expected, tmp_path, monkeypatch, fresh_registries
):
    name = entry.split("=")[1].strip().split(":")[0]
    _fake_distribution(tmp_path, "broken-plugin", f"[splitnet.models]\n{entry}\n", {name: module} if module else {})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(SplitnetError) as err:
        list_models()
    line = err.value.one_line()
    assert expected in line and "distribution broken-plugin 1.0" in line and entry.split(" =")[0] in line
    assert "pip uninstall broken-plugin" in line and "\n" not in line
    with pytest.raises(SplitnetError):  # still broken on the next read, not half loaded
        list_models()


def test_a_broken_partitioner_plugin_stops_splitrun_with_one_line(tmp_path):
    _fake_distribution(
        tmp_path,
        "bad-partitioner",
        "[splitnet.partitioners]\nbad = bad_part:Thing\n",
        {"bad_part": "class Thing:\n    name = 'bad'\n"},
    )
    result = splitrun("--model", "resnet_tiny", env=_env(tmp_path), timeout=120)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "bad = bad_part:Thing" in errors[0] and "bad-partitioner 1.0" in errors[0]
    assert "name, families and plan" in errors[0] and "Traceback" not in result.stderr


COUNTING = """
import mxnet as mx
from splitnet.zoo import ModelSpec
CALLS = []

def specs():
    CALLS.append(1)
    return ModelSpec("counted_net", "cnn", (1, 3, 8, 8), 2, lambda classes: mx.gluon.nn.Dense(classes))
"""


def test_plugins_load_lazily_and_once(tmp_path, monkeypatch, fresh_registries):
    _fake_distribution(
        tmp_path,
        "counting-plugin",
        "[splitnet.models]\ncounted = counting_plugin:specs\n",
        {"counting_plugin": COUNTING},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "counting_plugin", raising=False)
    assert "counting_plugin" not in sys.modules  # nothing loaded before a registry is read
    assert "counted_net" in list_models() and "counted_net" in list_models()
    assert sys.modules["counting_plugin"].CALLS == [1]
    assert "cnn" in list_partitioners()
    _MODELS.reset_plugins()  # what the fixture does after the test: the plug-in's models go with it
    assert "counted_net" not in _MODELS._items
