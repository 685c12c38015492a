"""Build a SplitModel from a SplitPlan and the reference weights: the generic mechanics.

Branch ``b`` re-creates every body op with the attributes and weights its op rule narrows
(see :mod:`op_rules`) and ends in a Flatten, so it returns a (1, F_b) feature vector. The
head concatenates the branch features in branch order and re-creates the head ops; the first
head layer's weight columns are re-ordered to the concatenated features (for contiguous
shares that is the identity, so the head is the reference dense layer, weights unchanged).
"""

from __future__ import annotations

import mxnet as mx
import numpy as np

from ..framework.plan import SplitPlan
from ..framework.split_model import Part, SplitModel
from .graph import DATA, ModelGraph
from .op_rules import flat_indices, rule_for

FEATURE_PREFIX = "feat"
CONCAT_NAME = "splitnet_merge_concat"


def _rebuild(
    graph: ModelGraph, ops: tuple[str, ...], built: dict[str, mx.sym.Symbol], overrides: dict[str, dict[str, str]]
) -> dict[str, mx.sym.Symbol]:
    """Re-create ``ops`` as MXNet symbols, reading inputs from ``built`` or weight variables."""
    for node in ops:
        inputs = []
        for src in graph.inputs(node):
            inputs.append(mx.sym.var(src) if graph.is_param(src) and src not in built else built[src])
        attrs = {**graph.attrs(node), **overrides.get(node, {})}
        built[node] = getattr(mx.sym, graph.op(node))(*inputs, name=node, **attrs)
    return built


def _used_params(graph: ModelGraph, ops: tuple[str, ...]) -> list[str]:
    return [p for op in ops for p in graph.inputs(op) if graph.is_param(p)]


def build_branch(graph: ModelGraph, plan: SplitPlan, b: int) -> Part:
    overrides: dict[str, dict[str, str]] = {}
    params: dict[str, np.ndarray] = {}
    for node in plan.body_ops:
        assign_in = plan.channels(graph.data_inputs(node)[0])
        attrs, narrowed = rule_for(graph, node).narrow(graph, node, assign_in, plan.channels(node), b)
        overrides[node] = attrs
        params.update(narrowed)
    built = _rebuild(graph, plan.body_ops, {DATA: mx.sym.var(DATA)}, overrides)
    features = mx.sym.Flatten(built[plan.feature_tensor], name=f"branch{b}_features")
    missing = set(_used_params(graph, plan.body_ops)) - set(params)
    params.update({name: graph.params[name] for name in missing})
    size = plan.branches[b].feature_size
    return Part(
        name=f"branch{b}",
        symbol_json=features.tojson(),
        params={k: np.ascontiguousarray(v, dtype=np.float32) for k, v in params.items()},
        aux_names=frozenset(k for k in params if k in graph.aux_names),
        input_names=(DATA,),
        input_shapes=(tuple(plan.input_shape),),
        output_shape=(plan.input_shape[0], size),
    )


def _feature_order(graph: ModelGraph, plan: SplitPlan) -> np.ndarray:
    """Columns of the reference's first head layer, in concatenated-branch order."""
    assign = plan.channels(plan.feature_tensor)
    shape = graph.shape(plan.feature_tensor)
    if assign is None:
        return np.tile(np.arange(int(np.prod(shape[1:]))), plan.n)
    return np.concatenate([flat_indices(idx, shape) for idx in assign])


def build_head(graph: ModelGraph, plan: SplitPlan) -> Part:
    batch = plan.input_shape[0]
    names = tuple(f"{FEATURE_PREFIX}{b}" for b in range(plan.n))
    merged = mx.sym.Concat(*[mx.sym.var(n) for n in names], dim=1, name=CONCAT_NAME)
    params = {name: graph.params[name] for name in _used_params(graph, plan.head_ops)}
    first = plan.head_ops[0]
    if graph.op(first) != "FullyConnected":
        raise ValueError(f"the head must start with a dense layer, found {graph.op(first)} ({first})")
    weight_name = graph.inputs(first)[1]
    params[weight_name] = graph.params[weight_name][:, _feature_order(graph, plan)]
    built = _rebuild(graph, plan.head_ops, {plan.feature_tensor: merged}, {})
    return Part(
        name="head",
        symbol_json=built[graph.output].tojson(),
        params={k: np.ascontiguousarray(v, dtype=np.float32) for k, v in params.items()},
        aux_names=frozenset(),
        input_names=names,
        input_shapes=tuple((batch, size) for size in plan.head.feature_sizes),
        output_shape=(batch, plan.head.outputs),
    )


def apply_plan(graph: ModelGraph, plan: SplitPlan) -> SplitModel:
    """The generic step every partitioner shares: plan + reference weights -> SplitModel."""
    branches = tuple(build_branch(graph, plan, b) for b in range(plan.n))
    return SplitModel(plan=plan, branches=branches, head=build_head(graph, plan))
