"""Model families beyond ResNet18: VGG (spatial features, big dense head), MobileNet
(depthwise convolutions), bottleneck ResNets, and a user's own HybridBlock CNN.

The invariants every registered model must meet, for N in {1,2,3,4}, are in
test_partitioners.py (parametrised over ``list_models()``); these tests check what is
particular to each family, compile the small models with TVM, and run the CLI end to end.
"""

from __future__ import annotations

import functools
import json
import warnings

import mxnet as mx
import numpy as np
import pytest
from conftest import ATOL_FP32, ATOL_N1, random_input, splitrun
from mxnet.gluon import nn

from splitnet.framework.compile import LocalModule, compile_part
from splitnet.framework.errors import SplitnetError
from splitnet.framework.targets import host_target
from splitnet.partitioners import apply_plan, graph_from_architecture, graph_from_block, partitioner_for
from splitnet.partitioners.op_rules import _is_depthwise
from splitnet.runtime.coded import head_layers
from splitnet.zoo import get_model_spec, list_models, load_reference

SMALL_PARAMS = 2_000_000  # models this small are compiled with TVM in every CI run


@functools.cache
def _architecture(name):
    spec = get_model_spec(name)
    return graph_from_architecture(spec.factory(spec.classes), spec.input_shape)


@functools.cache
def _weighted(name):
    reference = load_reference(name)
    return reference, graph_from_block(reference.block, reference.spec.input_shape)


def _params(name) -> int:
    return sum(v.size for v in _architecture(name).params.values())


SMALL_MODELS = [m for m in list_models() if _params(m) <= SMALL_PARAMS]


def test_every_family_has_a_full_size_and_a_small_model():
    families = {get_model_spec(m).family for m in list_models()}
    assert {"resnet_v1", "vgg", "mobilenet"} <= families
    for family in families:
        members = [m for m in list_models() if get_model_spec(m).family == family]
        assert any(m in SMALL_MODELS for m in members) and any(m not in SMALL_MODELS for m in members), family
    assert {"resnet18_v1", "resnet34_v1", "resnet50_v1", "vgg11", "vgg16", "mobilenet1.0"} <= set(list_models())


@pytest.mark.parametrize("model", SMALL_MODELS)
def test_small_model_branch_and_head_compile_and_match_mxnet(model, tmp_path):
    """One branch and the head through ONNX -> Relax -> TVM, against the same parts in MXNet."""
    reference, graph = _weighted(model)
    plan = partitioner_for(reference.spec.family).plan(graph, model=model, n=2, widths=None, multiple=8)
    split = apply_plan(graph, plan)
    x = random_input(reference.spec.input_shape, seed=2)
    branch = split.branches[-1]
    got = LocalModule(compile_part(branch, host_target(), cache_dir=tmp_path))(x)
    assert got.shape == branch.output_shape
    assert np.abs(got - branch(x)).max() <= ATOL_FP32
    features = split.features(x)
    head = LocalModule(compile_part(split.head, host_target(), cache_dir=tmp_path))
    assert np.abs(head(*features) - split(x)).max() <= ATOL_FP32


@pytest.mark.parametrize("model", ["vgg16", "vgg11", "vgg_tiny"])
def test_vgg_branches_send_their_channels_feature_maps(model):
    """No global pooling: each branch sends C_b x H x W values; the dense layers stay in the head."""
    graph = _architecture(model)
    plan = partitioner_for("vgg").plan(graph, model=model, n=2, widths=None, multiple=8)
    channels, height, width = graph.shape(plan.feature_tensor)[1:]
    assert graph.op(plan.feature_tensor) == "Pooling" and height * width > 1
    assert [b.feature_size for b in plan.branches] == [channels // 2 * height * width] * 2
    dense = [op for op in plan.head_ops if graph.op(op) == "FullyConnected"]
    assert len(dense) == 3 and plan.head_ops[0] == dense[0]
    if model == "vgg16":
        assert plan.head.params > 0.85 * plan.reference_params  # 124M of 138M weights are the head's


def test_vgg_head_is_rebuilt_and_codable():
    """The head's three dense layers (with relu and dropout between) run in-process and as a coded head."""
    reference, graph = _weighted("vgg_tiny")
    plan = partitioner_for("vgg").plan(graph, model="vgg_tiny", n=2, widths=(0.75, 0.25), multiple=8)
    split = apply_plan(graph, plan)
    kinds = [layer.kind for layer in head_layers(split.head)]
    assert kinds == ["dense", "relu", "identity", "dense", "relu", "identity", "dense"]
    # the head's dense weights are the reference's, first layer's columns in branch order
    first = plan.head_ops[0]
    weight = graph.inputs(first)[1]
    np.testing.assert_array_equal(split.head.params[weight], graph.params[weight])  # contiguous shares: identity
    n1 = apply_plan(graph, partitioner_for("vgg").plan(graph, model="vgg_tiny", n=1, widths=None, multiple=8))
    x = random_input(reference.spec.input_shape, seed=3)
    np.testing.assert_allclose(n1(x), reference.block(mx.nd.array(x)).asnumpy(), atol=ATOL_N1, rtol=0)


def test_depthwise_groups_follow_the_branch_channels():
    reference, graph = _weighted("mobilenet_tiny")
    plan = partitioner_for("mobilenet").plan(graph, model="mobilenet_tiny", n=3, widths=None, multiple=4)
    split = apply_plan(graph, plan)
    depthwise = [op for op in plan.body_ops if graph.op(op) == "Convolution" and _is_depthwise(graph, op)]
    assert len(depthwise) == 13
    for op in depthwise:
        source = graph.data_inputs(op)[0]
        assert plan.assignment[op] == plan.assignment[source]  # a group stays with its channel
    for b, branch in enumerate(split.branches):
        nodes = {node["name"]: node for node in json.loads(branch.symbol_json)["nodes"]}
        for op in depthwise:
            attrs = nodes[op]["attrs"]
            width = len(plan.assignment[op][b])
            assert attrs["num_group"] == attrs["num_filter"] == str(width)
            assert branch.params[graph.inputs(op)[1]].shape == (width, 1, 3, 3)
    # depthwise layers cost share, not share squared: branches cost more than body / N^2
    assert min(b.flops for b in plan.branches) > plan.reference_body_flops / 9


class UserCNN(nn.HybridBlock):
    """A user's own CNN: every op kind the generic partitioner supports, in one small block."""

    def __init__(self, classes: int = 7, middle=None, **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.stem = nn.HybridSequential()
            self.stem.add(nn.Conv2D(16, 3, padding=1), nn.BatchNorm(), nn.Activation("relu"), nn.MaxPool2D())
            self.left = nn.Conv2D(16, 3, padding=1)
            self.right = nn.Conv2D(16, 1)
            self.middle = middle or nn.Conv2D(32, 3, padding=1)
            self.pool = nn.AvgPool2D()
            self.flatten = nn.Flatten()
            self.hidden = nn.Dense(24, activation="relu")
            self.out = nn.Dense(classes)

    def hybrid_forward(self, F, x):  # noqa: N803 (Gluon's signature)
        x = self.stem(x)
        x = F.concat(self.left(x), self.right(x), dim=1)  # 32 channels
        x = F.relu(x + self.middle(x))  # residual add
        return self.out(self.hidden(self.flatten(self.pool(x))))


def _user_graph(block):
    mx.random.seed(0)
    block.initialize(mx.init.Xavier())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        block(mx.nd.zeros((1, 3, 16, 16)))
    return graph_from_block(block, (1, 3, 16, 16))


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_a_user_hybridblock_cnn_splits(n):
    block = UserCNN()
    graph = _user_graph(block)
    plan = partitioner_for("cnn").plan(graph, model="user", n=n, widths=None, multiple=4)
    split = apply_plan(graph, plan)
    x = random_input((1, 3, 16, 16), seed=n)
    expected = block(mx.nd.array(x)).asnumpy()
    assert graph.op(plan.feature_tensor) == "Flatten"  # flattened 32 x 4 x 4 map, sent index by index
    assert sum(b.feature_size for b in plan.branches) == 32 * 4 * 4
    assert split(x).shape == (1, 7)
    if n == 1:
        np.testing.assert_allclose(split(x), expected, atol=ATOL_N1, rtol=0)
    else:
        assert not np.allclose(split(x), expected, atol=ATOL_N1)
        concat = next(op for op in plan.body_ops if graph.op(op) == "Concat")
        halves = plan.channels(concat)  # each branch owns a share of both concatenated inputs
        assert all((idx < 16).any() and (idx >= 16).any() for idx in halves)


@pytest.mark.parametrize(
    "middle,op",
    [
        (nn.LayerNorm(axis=1, in_channels=32), "LayerNorm"),
        (nn.InstanceNorm(in_channels=32), "InstanceNorm"),
    ],
)
def test_an_unsupported_op_is_named_with_its_layer(middle, op):
    graph = _user_graph(UserCNN(middle=middle))
    layer = next(node for node in graph.ops() if graph.op(node) == op)
    with pytest.raises(SplitnetError, match=f"operator {op} in layer {layer} is not supported") as err:
        partitioner_for("cnn").plan(graph, model="user", n=2, widths=None, multiple=4)
    assert "supported: " in err.value.one_line()


def test_a_grouped_convolution_is_named_with_its_layer():
    graph = _user_graph(UserCNN(middle=nn.Conv2D(32, 3, padding=1, groups=2)))
    layer = next(n for n in graph.ops() if graph.attrs(n).get("num_group") == "2")
    with pytest.raises(SplitnetError, match=f"grouped convolution {layer} \\(num_group=2\\)"):
        partitioner_for("cnn").plan(graph, model="user", n=2, widths=None, multiple=4)


def test_a_model_without_a_conv_body_or_a_dense_head_is_refused():
    mlp = nn.HybridSequential()
    mlp.add(nn.Dense(8, activation="relu"), nn.Dense(3))
    mlp.initialize()
    with pytest.raises(SplitnetError, match="no convolutions before it"):
        partitioner_for("cnn").plan(graph_from_block(mlp, (1, 3, 8, 8)), model="mlp", n=2, widths=None, multiple=4)
    convs = nn.HybridSequential()
    convs.add(nn.Conv2D(8, 3), nn.GlobalAvgPool2D())
    convs.initialize()
    with pytest.raises(SplitnetError, match="no dense"):
        partitioner_for("cnn").plan(graph_from_block(convs, (1, 3, 8, 8)), model="c", n=2, widths=None, multiple=4)


@pytest.mark.boards
@pytest.mark.parametrize("model,extra", [("vgg_tiny", ["--policy", "coded"]), ("mobilenet_tiny", [])])
def test_splitrun_runs_each_new_family_end_to_end(model, extra, tmp_path, no_leaked_boards):
    report = tmp_path / "report.json"
    result = splitrun(
        "--model", model, "--branches", "2", "--runs", "2", "--warmup", "0", *extra, "--json", str(report)
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    assert data["ok"] and data["model"] == model and data["n"] == 2
    assert data["fidelity_max_abs_diff"] <= ATOL_FP32
    graph = _architecture(model)
    plan = partitioner_for(get_model_spec(model).family).plan(graph, model=model, n=2, widths=None, multiple=8)
    assert [b["flops"] for b in data["branches"]] == [b.flops for b in plan.branches]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["resnet50_v1", "vgg16"])
def test_full_size_model_split_runs_in_mxnet(model):
    """The two largest families with real (seeded) weights: N=1 is the reference, N=2 runs.

    Built once each (vgg16 has 138M weights); every other test plans them from shapes alone.
    """
    reference = load_reference(model)
    graph = graph_from_block(reference.block, reference.spec.input_shape)
    rule = partitioner_for(reference.spec.family)
    x = random_input(reference.spec.input_shape, seed=4)
    expected = reference.block(mx.nd.array(x)).asnumpy()
    one = apply_plan(graph, rule.plan(graph, model=model, n=1, widths=None, multiple=8))
    np.testing.assert_allclose(one(x), expected, atol=ATOL_N1, rtol=0)
    del one
    plan = rule.plan(graph, model=model, n=2, widths=None, multiple=8)
    two = apply_plan(graph, plan)
    features = two.features(x)
    assert [f.shape for f in features] == [(1, b.feature_size) for b in plan.branches]
    assert [b.param_count for b in two.branches] == [b.params for b in plan.branches]
    out = two.merge(features)
    assert out.shape == expected.shape and np.isfinite(out).all()


def test_a_registered_user_model_goes_through_load_reference_and_partition():
    """The in-process path the guide shows: register_model, then the same calls splitrun makes."""
    from splitnet.partitioners import partition
    from splitnet.zoo import ModelSpec, register_model
    from splitnet.zoo.registry import _MODELS

    spec = ModelSpec("user_cnn_test", "cnn", (1, 3, 16, 16), 7, lambda classes: UserCNN(classes=classes))
    register_model(spec)
    try:
        reference = load_reference("user_cnn_test")
        x = random_input(spec.input_shape, seed=5)
        expected = reference.block(mx.nd.array(x)).asnumpy()
        np.testing.assert_allclose(partition(reference, 1, multiple=4)(x), expected, atol=ATOL_N1, rtol=0)
        split = partition(reference, 3, widths=(2, 1, 1), multiple=4)
        assert split.plan.partitioner == "cnn" and split(x).shape == (1, 7)
        assert split.plan.branches[0].feature_size > split.plan.branches[1].feature_size
    finally:
        _MODELS._items.pop("user_cnn_test")


def test_splitrun_models_rejects_a_bad_branch_count_once():
    result = splitrun("models", "--branches", "9", timeout=120)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1 and "between 1 and 8" in errors[0]
