"""Fold inference batch norm into the convolution before it, in the exported ONNX graph.

TVM's ONNX frontend turns every ``BatchNormalization`` into subtract, divide, multiply and
add, fused after the convolution: four extra passes over each feature map per layer, and
tuning tasks (``conv2d_subtract_divide_multiply_add``) that no other model shares. With the
statistics folded into the weights, ``y = conv(x, W * s) + (b - mean) * s + beta`` with
``s = gamma / sqrt(var + eps)``, each layer is one convolution with a bias, before any tuning
(../shared/STACK.md). The result is equal to the unfolded graph to float rounding.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper


def _consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    users: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    return users


def _epsilon(node: onnx.NodeProto) -> float:
    for attr in node.attribute:
        if attr.name == "epsilon":
            return float(attr.f)
    return 1e-5  # the ONNX default


def fold_batch_norm(model: onnx.ModelProto) -> int:
    """Fold every ``Conv -> BatchNormalization`` pair in place; returns how many were folded.

    A batch norm is folded only when its input comes from a convolution that nothing else
    reads and whose weights are initializers; any other batch norm is left as it is.
    """
    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    users = _consumers(graph)
    outputs = {o.name for o in graph.output}
    folded: list[onnx.NodeProto] = []
    for bn in [n for n in graph.node if n.op_type == "BatchNormalization"]:
        conv = producer.get(bn.input[0])
        if conv is None or conv.op_type != "Conv" or len(users.get(conv.output[0], [])) != 1:
            continue
        if conv.output[0] in outputs or any(name not in weights for name in (*conv.input[1:], *bn.input[1:])):
            continue
        gamma, beta, mean, var = (numpy_helper.to_array(weights[name]).astype(np.float64) for name in bn.input[1:5])
        scale = gamma / np.sqrt(var + _epsilon(bn))
        kernel = numpy_helper.to_array(weights[conv.input[1]]).astype(np.float64)
        bias = numpy_helper.to_array(weights[conv.input[2]]).astype(np.float64) if len(conv.input) > 2 else 0.0
        new_kernel = (kernel * scale.reshape(-1, *([1] * (kernel.ndim - 1)))).astype(np.float32)
        new_bias = ((bias - mean) * scale + beta).astype(np.float32)
        kernel_name, bias_name = (
            f"{conv.name or conv.output[0]}_folded_weight",
            f"{conv.name or conv.output[0]}_folded_bias",
        )
        graph.initializer.extend(
            [numpy_helper.from_array(new_kernel, kernel_name), numpy_helper.from_array(new_bias, bias_name)]
        )
        del conv.input[1:]
        conv.input.extend([kernel_name, bias_name])
        conv.output[0] = bn.output[0]
        folded.append(bn)
    for bn in folded:
        graph.node.remove(bn)
    _drop_unused(graph)
    return len(folded)


def _drop_unused(graph: onnx.GraphProto) -> None:
    """Remove initializers (and their duplicate graph inputs) that no node reads any more."""
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    keep = [t for t in graph.initializer if t.name in used]
    dropped = {t.name for t in graph.initializer} - {t.name for t in keep}
    del graph.initializer[:]
    graph.initializer.extend(keep)
    inputs = [i for i in graph.input if i.name not in dropped]
    del graph.input[:]
    graph.input.extend(inputs)
