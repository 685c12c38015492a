"""How each operator carries branch channels, and how its weights narrow.

An *assignment* is, for one tensor, the channel indices each branch owns (a list of N index
arrays); ``None`` stands for the model input, which every branch receives whole. For each
supported op a rule says which assignment its output gets (``propagate``) and how to cut its
attributes and weights for one branch (``narrow``):

* Convolution (groups 1): output channels are shared out by :func:`channels.allocate`; branch
  ``b`` keeps ``W[out_b][:, in_b]`` and ``bias[out_b]``, where ``in_b`` is what branch ``b``
  owns of the input (all of it for the model input). Cross-branch weights are dropped: that
  is exactly what makes branches independent.
* Depthwise convolution (groups == channels): groups follow the input's channels.
* BatchNorm: gamma, beta, running mean and variance sliced to the branch's channels.
* Element-wise ops and pooling keep the assignment; adds require equal ones on all inputs
  (:func:`branch_plan.assign_channels` re-aligns a convolution that meets a concat at an add).
* Concat along channels offsets each input's indices; Flatten of C x H x W expands index c
  into c*H*W .. c*H*W + H*W - 1.

A new op is a new entry in ``RULES``; an op without one is reported by name and layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..framework.errors import SplitnetError
from .channels import allocate
from .graph import ModelGraph, parse_int_tuple

Assignment = list[np.ndarray] | None
Narrowed = tuple[dict[str, str], dict[str, np.ndarray]]


@dataclass(frozen=True)
class OpRule:
    propagate: Callable[[ModelGraph, str, list[Assignment], tuple[float, ...], int], Assignment]
    narrow: Callable[[ModelGraph, str, Assignment, Assignment, int], Narrowed]


def _same(graph, node, ins, shares, multiple):
    return ins[0]


def _no_params(graph, node, assign_in, assign_out, branch):
    return {}, {}


def _all_channels(graph: ModelGraph, node: str) -> np.ndarray:
    return np.arange(graph.shape(graph.data_inputs(node)[0])[1])


def _is_depthwise(graph: ModelGraph, node: str) -> bool:
    groups = int(graph.attrs(node).get("num_group", "1"))
    c_in = graph.shape(graph.data_inputs(node)[0])[1]
    return groups > 1 and groups == c_in == int(graph.attrs(node)["num_filter"])


def _conv_propagate(graph, node, ins, shares, multiple):
    groups = int(graph.attrs(node).get("num_group", "1"))
    if _is_depthwise(graph, node) and ins[0] is not None:
        return ins[0]
    if groups != 1:
        raise SplitnetError(
            f"grouped convolution {node} (num_group={groups}) is not supported by channel splitting",
            "use groups=1 or depthwise (groups == channels) convolutions",
        )
    return allocate(int(graph.attrs(node)["num_filter"]), shares, multiple, layer=node)


def _conv_narrow(graph, node, assign_in, assign_out, branch):
    inputs = graph.inputs(node)
    out_idx = assign_out[branch]
    in_idx = _all_channels(graph, node) if assign_in is None else assign_in[branch]
    weight = graph.params[inputs[1]]
    params = {inputs[1]: weight[out_idx] if _is_depthwise(graph, node) else weight[out_idx][:, in_idx]}
    if len(inputs) > 2:
        params[inputs[2]] = graph.params[inputs[2]][out_idx]
    attrs = {"num_filter": str(len(out_idx))}
    if _is_depthwise(graph, node):
        attrs["num_group"] = str(len(out_idx))
    return attrs, params


def _bn_narrow(graph, node, assign_in, assign_out, branch):
    idx = _all_channels(graph, node) if assign_out is None else assign_out[branch]
    return {}, {name: graph.params[name][idx] for name in graph.inputs(node)[1:]}


def _add_propagate(graph, node, ins, shares, multiple):
    first = ins[0]
    for other in ins[1:]:
        same = (first is None and other is None) or (
            first is not None
            and other is not None
            and all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))
        )
        if not same:
            raise SplitnetError(
                f"the inputs of {node} carry different branch channels, so branches would need each other's data",
                "give the layers joined by this add equal widths",
            )
    return first


def _concat_propagate(graph, node, ins, shares, multiple):
    if int(graph.attrs(node).get("dim", "1")) != 1:
        raise SplitnetError(f"concat {node} is not along channels", "only channel concat (dim=1) can be split")
    out: list[list[np.ndarray]] = [[] for _ in shares]
    offset = 0
    for src, assign in zip(graph.data_inputs(node), ins, strict=True):
        width = graph.shape(src)[1]
        for b in range(len(shares)):
            out[b].append((np.arange(width) if assign is None else assign[b]) + offset)
        offset += width
    return [np.concatenate(parts) for parts in out]


def flat_indices(channels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Positions of ``channels`` after flattening a (N, C, H, W) tensor: c -> c*H*W .. c*H*W+H*W-1."""
    spatial = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return (channels[:, None] * spatial + np.arange(spatial)[None, :]).reshape(-1)


def _flatten_propagate(graph, node, ins, shares, multiple):
    shape = graph.shape(graph.data_inputs(node)[0])
    if ins[0] is None:
        return None
    return [flat_indices(idx, shape) for idx in ins[0]]


_ELEMENTWISE = OpRule(_same, _no_params)
_ADD = OpRule(_add_propagate, _no_params)

RULES: dict[str, OpRule] = {
    "Convolution": OpRule(_conv_propagate, _conv_narrow),
    "BatchNorm": OpRule(_same, _bn_narrow),
    "Activation": _ELEMENTWISE,
    "relu": _ELEMENTWISE,
    "sigmoid": _ELEMENTWISE,
    "clip": _ELEMENTWISE,
    "LeakyReLU": _ELEMENTWISE,
    "Dropout": _ELEMENTWISE,
    "Pooling": _ELEMENTWISE,
    "Flatten": OpRule(_flatten_propagate, _no_params),
    "Concat": OpRule(_concat_propagate, _no_params),
    "elemwise_add": _ADD,
    "broadcast_add": _ADD,
    "_Plus": _ADD,
    "_plus": _ADD,
}


def rule_for(graph: ModelGraph, node: str) -> OpRule:
    op = graph.op(node)
    if op == "LeakyReLU" and graph.attrs(node).get("act_type", "leaky") == "prelu":
        op = "prelu"
    try:
        return RULES[op]
    except KeyError:
        raise SplitnetError(
            f"operator {op} in layer {node} is not supported by channel splitting",
            f"supported: {', '.join(sorted(RULES))}",
        ) from None


def conv_flops(graph: ModelGraph, node: str, c_in: int, c_out: int) -> int:
    """Multiply-adds x 2 of a convolution with the given channel counts at the node's shape."""
    kernel = parse_int_tuple(graph.attrs(node)["kernel"])
    groups = c_out if _is_depthwise(graph, node) else 1
    spatial = int(np.prod(graph.shape(node)[2:]))
    return 2 * spatial * c_out * (c_in // groups) * int(np.prod(kernel))
