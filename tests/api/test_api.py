"""The Python API: the runnable example, and the calls a notebook makes, on real local boards."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import ATOL_N1, rpc_processes

import splitnet

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.boards
def test_the_example_classifies_digits_on_two_boards():
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "python_api.py")], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    answers = [line.split() for line in result.stdout.splitlines() if line.startswith("label ")]
    assert len(answers) == 8
    assert sum(words[1].rstrip(":") == words[-1] for words in answers) >= 7  # trained, fine-tuned weights
    assert "PASS" in result.stdout and "on pynq0, pynq1" in result.stdout
    assert "export + compile" in result.stderr  # progress on stderr


def test_split_n1_is_the_reference_and_bad_requests_are_one_line():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = splitnet.load_model("resnet_tiny")
        whole = splitnet.split(model, branches=1)
    x = np.random.RandomState(0).uniform(-1, 1, model.spec.input_shape).astype(np.float32)
    import mxnet as mx

    assert np.abs(whole(x) - model.block(mx.nd.array(x)).asnumpy()).max() <= ATOL_N1
    with pytest.raises(splitnet.SplitnetError, match="between 1 and 8"):
        splitnet.split(model, branches=9)
    with pytest.raises(splitnet.SplitnetError, match="unknown model"):
        splitnet.split("resnet9000")
    assert "resnet_tiny" in splitnet.list_models()


@pytest.mark.boards
def test_deploy_answers_arrays_and_images_checks_them_and_stops_its_boards(tmp_path):
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        split = splitnet.split("resnet_tiny", branches=2)
    image = tmp_path / "red.png"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(image)
    x = np.random.RandomState(1).uniform(-1, 1, split.plan.input_shape).astype(np.float32)
    with splitnet.deploy(split, inventory="local") as boards:
        assert np.abs(boards(x) - split(x)).max() <= 1e-4
        assert boards(x[0]).shape == (1, 10)  # (C, H, W) is one frame too
        assert boards(image).shape == (1, 10) and boards(Image.open(image)).shape == (1, 10)
        with pytest.raises(splitnet.SplitnetError, match="shape"):
            boards(np.zeros((5, 5), dtype=np.float32))
        report = boards.report()
    assert report.frames == 4 and report.ok and report.n == 2 and len(report.boards) == 2
    assert report.to_dict()["ok"] and "PASS" in str(report)
    assert not rpc_processes()  # leaving the block stopped the local boards


def test_the_package_re_exports_exactly_the_api():
    from splitnet import api

    assert set(splitnet.__all__) - {"__version__"} == set(api.__all__)
    assert all(getattr(splitnet, name) is getattr(api, name) for name in api.__all__)
