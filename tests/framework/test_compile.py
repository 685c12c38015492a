"""Each compiled part against MXNet, and the compile cache."""

from __future__ import annotations

import pytest
from conftest import ATOL_FP32, random_input

from splitnet.framework.compile import LocalModule, compile_part
from splitnet.framework.errors import SplitnetError
from splitnet.framework.targets import host_target
from splitnet.partitioners import apply_plan, get_partitioner, graph_from_block


def _split(reference, graph, n, multiple=8):
    plan = get_partitioner("resnet_v1").plan(graph, model=reference.spec.name, n=n, widths=None, multiple=multiple)
    return apply_plan(graph, plan)


@pytest.mark.parametrize("n", [1, 2])
def test_compiled_tiny_parts_match_mxnet(tiny_reference, tiny_graph, n, tmp_path):
    split = _split(tiny_reference, tiny_graph, n)
    x = random_input(tiny_reference.spec.input_shape, seed=n)
    features = []
    for branch in split.branches:
        got = LocalModule(compile_part(branch, host_target(), cache_dir=tmp_path))(x)
        assert got.shape == branch.output_shape
        assert abs(got - branch(x)).max() <= ATOL_FP32
        features.append(got)
    head = LocalModule(compile_part(split.head, host_target(), cache_dir=tmp_path))
    assert abs(head(*features) - split(x)).max() <= ATOL_FP32


def test_nhwc_builds_give_the_same_answers_under_their_own_cache_key(tiny_reference, tiny_graph, tmp_path):
    split = _split(tiny_reference, tiny_graph, 2)
    x = random_input(tiny_reference.spec.input_shape, seed=3)
    for branch in split.branches:
        nchw = compile_part(branch, host_target(), cache_dir=tmp_path)
        nhwc = compile_part(branch, host_target(), cache_dir=tmp_path, layout="NHWC")
        assert nhwc.key != nchw.key and not nhwc.cached
        got = LocalModule(nhwc)(x)
        assert got.shape == branch.output_shape
        assert abs(got - branch(x)).max() <= ATOL_FP32
    with pytest.raises(SplitnetError, match="unknown layout 'NCHW16c'"):
        compile_part(split.branches[0], host_target(), cache_dir=tmp_path, layout="NCHW16c")


def test_second_compile_comes_from_the_cache(tiny_reference, tiny_graph, tmp_path):
    branch = _split(tiny_reference, tiny_graph, 2).branches[0]
    first = compile_part(branch, host_target(), cache_dir=tmp_path)
    second = compile_part(branch, host_target(), cache_dir=tmp_path)
    assert not first.cached and second.cached and first.path == second.path
    other_target = compile_part(branch, host_target(cores=2), cache_dir=tmp_path)
    assert not other_target.cached and other_target.key != first.key


def test_unknown_export_format_is_a_clear_error(tiny_reference, tiny_graph, tmp_path):
    branch = _split(tiny_reference, tiny_graph, 2).branches[0]
    with pytest.raises(SplitnetError, match="unknown export format"):
        compile_part(branch, host_target(), fmt="zip", cache_dir=tmp_path)


@pytest.mark.slow
def test_compiled_resnet18_branches_match_mxnet(tmp_path):
    from splitnet.zoo import load_reference

    reference = load_reference("resnet18_v1")
    graph = graph_from_block(reference.block, reference.spec.input_shape)
    split = _split(reference, graph, 2)
    x = random_input(reference.spec.input_shape)
    for branch in split.branches:
        got = LocalModule(compile_part(branch, host_target(), cache_dir=tmp_path))(x)
        assert abs(got - branch(x)).max() <= ATOL_FP32
