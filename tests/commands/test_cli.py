"""splitrun as a user runs it: a subprocess, a real local tracker and boards, the tiny model."""

from __future__ import annotations

import json
import signal
import time

import pytest
from conftest import ATOL_FP32, rpc_processes, splitrun, splitrun_popen
from PIL import Image

pytestmark = pytest.mark.boards
TINY = ["--model", "resnet_tiny", "--runs", "3", "--warmup", "1"]


def test_tiny_run_end_to_end(tmp_path):
    report = tmp_path / "report.json"
    result = splitrun(*TINY, "--branches", "2", "--json", str(report))
    assert result.returncode == 0, result.stderr
    for text in ("Branches", "pynq0", "pynq1", "End to end", "p99 ms", "throughput", "PASS", "emulated"):
        assert text in result.stdout
    data = json.loads(report.read_text())
    assert data["ok"] and data["n"] == 2 and data["fidelity_max_abs_diff"] <= ATOL_FP32
    assert [b["board"] for b in data["branches"]] == ["pynq0", "pynq1"]
    assert data["end_to_end"]["frames"] == 3 and data["throughput_fps"] > 0
    assert all(b["compute_ms"] > 0 and b["call"]["p50_ms"] > 0 for b in data["branches"])
    assert all(b["compute_from"] == "calls" for b in data["branches"])  # the boards' clocks, in the calls
    assert "compute by the boards' clocks in the timed calls" in result.stdout
    assert "export + compile" in result.stderr and "upload" in result.stderr  # progress bars


def test_user_images_of_any_mode_are_converted(tmp_path):
    images = tmp_path / "imgs"
    images.mkdir()
    Image.new("RGB", (50, 40), (200, 10, 10)).save(images / "red.png")
    Image.new("L", (64, 64), 128).save(images / "grey.jpg")
    Image.new("RGBA", (20, 90), (0, 0, 255, 128)).save(images / "blue.png")
    result = splitrun(*TINY, "--branches", "3", "--multiple", "4", "--widths", "2,1,1", "--images", str(images))
    assert result.returncode == 0, result.stderr
    assert "3 images" in result.stdout and "PASS" in result.stdout


def _bad_input_cases(tmp_path):
    not_images = tmp_path / "mixed"
    not_images.mkdir()
    Image.new("RGB", (8, 8)).save(not_images / "ok.png")
    (not_images / "notes.txt").write_text("not an image")
    return {
        "branches 0": (["--branches", "0"], "between 1 and 8"),
        "branches 9": (["--branches", "9"], "between 1 and 8"),
        "unknown model": (["--model", "resnet9000"], "unknown model 'resnet9000'"),
        "missing images": (["--images", str(tmp_path / "nowhere")], "does not exist"),
        "non-image file": (["--images", str(not_images)], "notes.txt is not a readable image"),
        "missing inventory": (["--inventory", "boards.yaml"], "inventory file boards.yaml not found"),
        "bad widths": (["--widths", "a,b"], "--widths"),
        "too many for layer": (["--model", "resnet_tiny", "--branches", "3"], "--multiple"),
        "unknown flag": (["--frobnicate"], "unrecognized arguments"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "branches 0",
        "branches 9",
        "unknown model",
        "missing images",
        "non-image file",
        "missing inventory",
        "bad widths",
        "too many for layer",
        "unknown flag",
    ],
)
def test_bad_input_is_one_line_with_a_fix(case, tmp_path):
    args, expected = _bad_input_cases(tmp_path)[case]
    proc = splitrun_popen(*args)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2
    assert "Traceback" not in err + out
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0] and "fix:" in errors[0], err
    assert not rpc_processes(owner=proc.pid)


def test_ctrl_c_during_a_run_stops_every_board(tmp_path):
    proc = splitrun_popen("--model", "resnet_tiny", "--runs", "1000000")
    deadline = time.monotonic() + 120
    while len(rpc_processes(owner=proc.pid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(rpc_processes(owner=proc.pid)) >= 3, "boards never started"
    time.sleep(3)  # well into the run
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    time.sleep(0.5)
    assert not rpc_processes(owner=proc.pid)


def test_help_documents_every_option():
    result = splitrun("--help")
    assert result.returncode == 0
    for option in ("--branches", "--model", "--widths", "--images", "--runs", "--json", "--inventory", "--multiple"):
        assert option in result.stdout
    assert "--placement" in result.stdout and "splitrun boards" in result.stdout
    boards_help = splitrun("boards", "--help")
    assert boards_help.returncode == 0 and "--inventory" in boards_help.stdout and "--wait" in boards_help.stdout


@pytest.mark.slow
def test_default_resnet18_two_boards(tmp_path):
    """The README's main job (`splitrun --branches 2`), with fewer timed frames."""
    report = tmp_path / "report.json"
    result = splitrun("--branches", "2", "--runs", "2", "--warmup", "0", "--json", str(report), timeout=900)
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    assert data["model"] == "resnet18_v1" and data["ok"]
    assert data["fidelity_max_abs_diff"] <= ATOL_FP32
    assert [b["feature_size"] for b in data["branches"]] == [256, 256]
