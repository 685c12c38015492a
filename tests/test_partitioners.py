"""Partition invariants, parametrised over every registered model and N in {1,2,3,4}."""

from __future__ import annotations

import functools
import json

import mxnet as mx
import numpy as np
import pytest
from conftest import ATOL_N1, random_input
from splitnet.framework.errors import SplitnetError
from splitnet.partitioners import (
    SplitPlan,
    allocate,
    apply_plan,
    get_partitioner,
    graph_from_block,
    list_partitioners,
    normalise_shares,
    partitioner_for,
)
from splitnet.zoo import get_model_spec, list_models, load_reference


@functools.cache
def _reference_and_graph(name):
    reference = load_reference(name)
    return reference, graph_from_block(reference.block, reference.spec.input_shape)


def _multiple(graph, n):
    """The default 8, or the largest power of two the narrowest layer allows for N."""
    narrowest = min(graph.shape(op)[1] for op in graph.ops() if graph.op(op) == "Convolution")
    multiple = 8
    while narrowest // multiple < n:
        multiple //= 2
    return multiple


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("model", list_models())
def test_partition_invariants(model, n):
    reference, graph = _reference_and_graph(model)
    rule = partitioner_for(reference.spec.family)
    plan = rule.plan(graph, model=model, n=n, widths=None, multiple=_multiple(graph, n))
    split = apply_plan(graph, plan)
    x = random_input(reference.spec.input_shape)
    expected = reference.block(mx.nd.array(x)).asnumpy()

    # shapes: every branch takes the full input and ends in a feature vector; widths add up
    features = split.features(x)
    assert [f.shape for f in features] == [(1, b.feature_size) for b in plan.branches]
    assert sum(b.feature_size for b in plan.branches) == graph.shape(plan.feature_tensor)[1]
    out = split.merge(features)
    assert out.shape == expected.shape

    # branch weights are slices of the reference's: every branch parameter is a subset
    for branch in split.branches:
        for name, value in branch.params.items():
            assert name in graph.params and value.size <= graph.params[name].size

    # FLOPs: a branch of width 1/N costs about 1/N^2 of the body (the 3-channel stem is not split)
    ideal = plan.reference_body_flops / n**2
    if graph.shape(plan.feature_tensor)[1] % (n * plan.multiple) == 0 and n != 3:
        for branch in plan.branches:
            assert 0.95 <= branch.flops / ideal <= 1.25, (branch.index, branch.flops / ideal)
    total = sum(b.flops for b in plan.branches)
    assert 0.9 <= total / (plan.reference_body_flops / n) <= 1.4
    assert all(b.params > 0 for b in plan.branches)

    if n == 1:
        np.testing.assert_allclose(out, expected, atol=ATOL_N1, rtol=0)
        assert plan.branches[0].flops == plan.reference_body_flops
    else:
        assert not np.allclose(out, expected, atol=ATOL_N1)  # cross-branch weights really dropped


def test_plan_round_trips_through_json(tiny_graph):
    plan = get_partitioner("resnet_v1").plan(tiny_graph, model="resnet_tiny", n=2, widths=(3, 1), multiple=4)
    again = SplitPlan.from_dict(json.loads(plan.to_json()))
    assert again == plan and again.digest() == plan.digest()


def test_unequal_widths_follow_the_shares(tiny_graph):
    plan = get_partitioner("resnet_v1").plan(tiny_graph, model="resnet_tiny", n=2, widths=(0.75, 0.25), multiple=4)
    assert plan.shares == (0.75, 0.25)
    assert [b.feature_size for b in plan.branches] == [96, 32]
    assert plan.branches[0].flops > 5 * plan.branches[1].flops


def test_head_reuses_reference_dense_weights(tiny_reference, tiny_graph):
    plan = get_partitioner("resnet_v1").plan(tiny_graph, model="resnet_tiny", n=3, widths=None, multiple=4)
    split = apply_plan(tiny_graph, plan)
    weight = next(k for k in split.head.params if k.endswith("dense0_weight"))
    np.testing.assert_array_equal(split.head.params[weight], tiny_graph.params[weight])


@pytest.mark.parametrize("channels,n,multiple", [(64, 2, 8), (64, 3, 8), (512, 8, 16), (16, 4, 4), (20, 2, 8)])
def test_allocate_covers_every_channel_once(channels, n, multiple):
    parts = allocate(channels, normalise_shares(n, None), multiple)
    assert np.array_equal(np.concatenate(parts), np.arange(channels))
    assert all(len(p) >= multiple for p in parts)


def test_too_many_branches_for_the_narrowest_layer_is_a_clear_error(tiny_graph):
    with pytest.raises(SplitnetError, match="at least 24 channels") as err:
        get_partitioner("resnet_v1").plan(tiny_graph, model="resnet_tiny", n=3, widths=None, multiple=8)
    assert "--multiple" in err.value.one_line()


@pytest.mark.parametrize("n", [0, 9, -1])
def test_branch_count_out_of_range(n):
    with pytest.raises(SplitnetError, match="between 1 and 8"):
        normalise_shares(n, None)


def test_width_count_must_match_branches():
    with pytest.raises(SplitnetError, match="2 width shares given for 3 branches"):
        normalise_shares(3, (0.5, 0.5))


def test_unknown_partitioner_lists_known_ones():
    with pytest.raises(SplitnetError, match="resnet_v1"):
        get_partitioner("nope")
    assert "resnet_v1" in list_partitioners()
    assert get_model_spec("resnet18_v1").family in partitioner_for("resnet_v1").families
