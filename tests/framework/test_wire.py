"""uint8 frames on the wire: the cast and normalisation compiled into the front of each branch."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ATOL_FP32, splitrun

from splitnet.framework.compile import LocalModule, artifact_key, compile_part, to_onnx
from splitnet.framework.images import IMAGENET, Preprocessing, builtin_images, pixels_of, preprocess
from splitnet.framework.targets import host_target
from splitnet.framework.wire import frame_bytes, with_wire
from splitnet.partitioners import apply_plan, get_partitioner
from splitnet.tuning.tuner import extract_tasks

ODD = Preprocessing("(x - 127) / 128", 1.0, (127.0, 127.0, 127.0), (128.0, 128.0, 128.0))


@pytest.fixture(scope="module")
def tiny_split(tiny_graph):
    plan = get_partitioner("resnet_v1").plan(tiny_graph, model="resnet_tiny", n=2, widths=None, multiple=8)
    return apply_plan(tiny_graph, plan)


def _pixels(shape, seed=0):
    return np.random.RandomState(seed).randint(0, 256, size=shape).astype(np.uint8)


def test_frames_carry_the_pixels_they_were_normalised_from(tiny_reference):
    shape = tiny_reference.spec.input_shape
    name, image = builtin_images(1)[0]
    pixels = pixels_of(image, shape)
    assert pixels.dtype == np.uint8 and pixels.shape == shape
    assert np.array_equal(preprocess(image, shape), IMAGENET.apply(pixels))


@pytest.mark.parametrize("preprocessing", [IMAGENET, ODD], ids=["imagenet", "offset"])
def test_compiled_front_matches_the_float_path(tiny_split, preprocessing, tmp_path):
    """The uint8 branch, compiled, answers what the float32 branch answers for the normalised frame."""
    front = with_wire(tiny_split, "uint8", preprocessing).branches[0]
    plain = tiny_split.branches[0]
    model = to_onnx(front, tmp_path / "front.onnx")
    assert model.graph.input[0].type.tensor_type.elem_type == 2  # onnx UINT8
    assert [n.op_type for n in model.graph.node[:4]] == ["Cast", "Div", "Sub", "Div"]
    pixels = _pixels(plain.input_shapes[0])
    module = LocalModule(compile_part(front, host_target()))
    got = module(pixels)
    want = plain(preprocessing.apply(pixels))
    assert np.abs(got - want).max() <= ATOL_FP32
    assert np.abs(front(pixels) - want).max() == 0.0  # in-process, the same numpy normalisation


def test_the_front_is_in_the_cache_key_and_float32_keeps_its_own(tiny_split):
    target = host_target()
    plain = tiny_split.branches[0]
    imagenet = with_wire(tiny_split, "uint8", IMAGENET).branches[0]
    offset = with_wire(tiny_split, "uint8", ODD).branches[0]
    assert with_wire(tiny_split, "float32", IMAGENET) is tiny_split
    keys = {artifact_key(p, target, "so", None) for p in (plain, imagenet, offset)}
    assert len(keys) == 3
    assert with_wire(tiny_split, "uint8", IMAGENET).head == tiny_split.head  # the head reads features


def test_tuning_sees_the_front_as_one_task_of_its_own(tiny_split):
    """Tune and run build the same graph; the convolutions' tasks do not change with the wire."""
    target = host_target()
    plain = {t.name for t in extract_tasks([*tiny_split.branches, tiny_split.head], target)}
    split = with_wire(tiny_split, "uint8", IMAGENET)
    wired = {t.name for t in extract_tasks([*split.branches, split.head], target)}
    assert plain < wired
    assert [name for name in wired - plain if "cast" in name] == sorted(wired - plain)


def test_frame_bytes():
    assert frame_bytes((1, 3, 224, 224), "uint8") * 4 == frame_bytes((1, 3, 224, 224), "float32") == 602112


@pytest.mark.boards
def test_uint8_run_on_boards_matches_the_split_fed_the_same_frame(tmp_path):
    """splitrun with uint8 frames: every answer within 1e-4 of the in-process split, a quarter of the bytes."""
    reports = {}
    for wire in ("uint8", "float32"):
        out = tmp_path / f"{wire}.json"
        result = splitrun(
            "--model", "resnet_tiny", "--runs", "3", "--warmup", "1", "--depth", "1", "--wire", wire,
            "--json", str(out),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        reports[wire] = json.loads(out.read_text())
    for data in reports.values():
        assert data["ok"] and data["fidelity_max_abs_diff"] <= ATOL_FP32
    uint8, float32 = (reports[w]["wire"] for w in ("uint8", "float32"))
    assert uint8["format"] == "uint8" and float32["format"] == "float32"
    assert uint8["frame_bytes"] * 4 == float32["frame_bytes"]
    assert 0 < uint8["sent_bytes_per_frame"] <= 2 * uint8["frame_bytes"]  # each board gets the frame once
    assert uint8["sent_bytes_per_frame"] * 4 == pytest.approx(float32["sent_bytes_per_frame"])


def test_wire_uint8_is_for_the_branch_strategy_only():
    result = splitrun("--model", "resnet_tiny", "--strategy", "single", "--wire", "uint8")
    assert result.returncode == 2 and "--wire uint8 applies to --strategy branch only" in result.stderr
    assert "Traceback" not in result.stderr
