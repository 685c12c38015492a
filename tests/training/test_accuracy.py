"""Accuracy: the shipped weights, the in-process figures, and ``splitrun accuracy`` on real boards."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from conftest import ATOL_FP32, splitrun

from splitnet.framework.errors import SplitnetError
from splitnet.training.accuracy import AccuracyOptions, measure
from splitnet.training.train import TrainOptions, train
from splitnet.zoo import params_dir, sha256_of

PARAMS_BUDGET_BYTES = 60 * 1024 * 1024  # params/ stays lean (issue 6)
ONE_IMAGE = 1.0 / 300  # recorded vs re-measured top-1: at most one held-out image apart
TINY = ["--model", "resnet_tiny", "--multiple", "4", "--branches", "2"]
ENTRY_FIELDS = ("model", "classes", "n", "file", "sha256", "dataset", "epochs", "seed", "top1", "top5", "command")


@pytest.fixture(scope="module")
def tiny_params(tmp_path_factory):
    """resnet_tiny trained for a moment on 64 digits, and its N=2 split fine-tuned."""
    out = tmp_path_factory.mktemp("tiny-params")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(TrainOptions(model="resnet_tiny", branches=(2,), epochs=1, split_epochs=1, limit=64, multiple=4, out=out))
    return out


def _manifest(directory: Path) -> list[dict]:
    return json.loads((directory / "manifest.json").read_text())["entries"]


def test_shipped_manifest_entries_are_complete_and_verified():
    directory = params_dir()
    entries = _manifest(directory)
    assert {e["n"] for e in entries if e["model"] == "resnet18_v1_thumb16"} >= {1, 2, 4}
    for entry in entries:
        missing = [k for k in ENTRY_FIELDS if k not in entry]
        assert not missing, (entry["file"], missing)
        assert sha256_of(directory / entry["file"]) == entry["sha256"]
        assert entry["n"] == 1 or len(entry["widths"]) == entry["n"]
        assert entry["command"].startswith("splitrun train")
    shipped = sum(p.stat().st_size for p in directory.iterdir() if p.is_file())
    assert shipped < PARAMS_BUDGET_BYTES


@pytest.mark.slow
def test_shipped_params_reproduce_their_recorded_accuracy(monkeypatch):
    monkeypatch.delenv("SPLITNET_PARAMS_DIR", raising=False)
    entries = {e["n"]: e for e in _manifest(params_dir()) if e["model"] == "resnet18_v1_thumb16"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = measure(AccuracyOptions(model="resnet18_v1_thumb16", branches=(2, 4), boards=False))
    assert report.trained
    for row in report.rows:
        assert abs(row.top1 - entries[row.n]["top1"]) <= ONE_IMAGE, (row.n, row.top1, entries[row.n]["top1"])
        assert row.n == 1 or row.weights.startswith("fine-tuned")


def test_in_process_figures_match_what_training_recorded(tiny_params, monkeypatch):
    monkeypatch.setenv("SPLITNET_PARAMS_DIR", str(tiny_params))
    entries = {e["n"]: e for e in _manifest(tiny_params)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = measure(AccuracyOptions(model="resnet_tiny", branches=(2,), multiple=4, boards=False))
    unsplit, split = report.rows
    assert (unsplit.n, split.n) == (1, 2) and unsplit.agreement == 1.0
    for row in report.rows:
        assert abs(row.top1 - entries[row.n]["top1"]) <= ONE_IMAGE
        assert row.top1 <= row.top5 <= 1.0
    assert split.drop == pytest.approx(unsplit.top1 - split.top1)
    assert split.degraded_worst <= split.degraded_top1 and "fine-tuned" in split.weights
    assert "digits" in report.dataset


@pytest.mark.boards
def test_accuracy_command_through_local_boards(tiny_params, tmp_path):
    out = tmp_path / "report"
    result = splitrun(
        "accuracy", *TINY, "--limit", "8", "--out", str(out), env={"SPLITNET_PARAMS_DIR": str(tiny_params)}
    )
    assert result.returncode == 0, result.stderr
    data = json.loads((out / "accuracy.json").read_text())
    where = [(r["n"], r["where"]) for r in data["rows"]]
    assert where == [(1, "in-process"), (2, "in-process"), (1, "boards"), (2, "boards")]
    boards = [r for r in data["rows"] if r["where"] == "boards"]
    assert all(r["images"] == 8 and r["fidelity"] <= ATOL_FP32 and r["frame_ms"] > 0 for r in boards)
    assert boards[0]["speedup"] == 1.0 and boards[1]["degraded_top1"] is not None
    assert "fine-tuned" in boards[1]["weights"] and "digits" in data["dataset"] and data["fidelity_ok"]
    markdown = (out / "accuracy.md").read_text()
    assert "| N | where |" in markdown and "splitrun train" in markdown
    assert (out / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Accuracy of resnet_tiny" in result.stdout and "boards N=2" in result.stderr


@pytest.mark.parametrize(
    "args, expected",
    [
        (["accuracy", "--dataset", "imagenet"], "unknown dataset 'imagenet'"),
        (["accuracy", "--dataset", "./no/such/folder"], "does not exist"),
        (["accuracy", "--branches", "2,x"], "not a comma-separated list"),
        (["train", "--branches", "2,2"], "repeats a value"),
    ],
)
def test_bad_input_is_one_line(args, expected, tmp_path):
    result = splitrun(*args, "--out", str(tmp_path / "out"), "--no-boards" if args[0] == "accuracy" else "--limit=8")
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0], result.stderr


def test_fine_tuned_weights_replace_the_sliced_ones(tiny_params, tmp_path):
    import shutil

    from splitnet.partitioners import partition
    from splitnet.training.store import fine_tuned
    from splitnet.zoo import load_reference

    tiny_params = shutil.copytree(tiny_params, tmp_path / "params")  # this test corrupts a file
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = load_reference("resnet_tiny", directory=tiny_params)
        sliced = partition(reference, 2, None, 4)
        tuned, entry = fine_tuned(sliced, reference, tiny_params)
        same, none = fine_tuned(partition(reference, 2, (3, 1), 4), reference, tiny_params)  # other widths
    assert entry is not None and entry["n"] == 2 and none is None
    assert tuned.plan is sliced.plan and set(tuned.head.params) == set(sliced.head.params)
    assert any(
        not (tuned.head.params[k] == sliced.head.params[k]).all() for k in sliced.head.params
    )  # fine-tuning moved the head
    (tiny_params / entry["file"]).write_bytes(b"truncated")
    with pytest.raises(SplitnetError, match="corrupt or truncated"):
        fine_tuned(sliced, reference, tiny_params)


@pytest.mark.boards
def test_the_board_pass_applies_the_tuning_database_that_matches(tmp_path, monkeypatch):
    """The accuracy board pass builds through the deploy path: a matching database is applied."""
    from splitnet.partitioners import partition
    from splitnet.runtime.inventory_file import resolve_inventory
    from splitnet.tuning.key import DB_FILES, KEY_FILE, key_for
    from splitnet.zoo import load_reference

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unsplit = partition(load_reference("resnet_tiny"), 1, None, 4)
    target = resolve_inventory(None).boards[0].build_target  # what the default boards build for
    key = key_for(unsplit, target)
    folder = tmp_path / "tuning" / key.folder_name
    folder.mkdir(parents=True)
    (folder / KEY_FILE).write_text(json.dumps({**key.to_json(), "records": 1}))
    for name in DB_FILES:  # an empty database applies no schedule, but it is the one that matches
        (folder / name).write_text("")
    monkeypatch.setenv("SPLITNET_TUNING_DIR", str(tmp_path / "tuning"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = measure(AccuracyOptions(model="resnet_tiny", branches=(2,), multiple=4, limit=3))
    boards = {row.n: row for row in report.rows if row.where == "boards"}
    assert boards[1].tuning == (f"branch0, head: tuned: database {folder.name}",), boards[1].tuning
    assert all(note.startswith("branch0, branch1, head: untuned") for note in boards[2].tuning), boards[2].tuning
    assert report.fidelity_ok
