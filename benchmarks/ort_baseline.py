"""onnxruntime as the benchmarks' baseline: one thread, and a graph it can treat fairly.

mxnet's ONNX exporter lists the weights as graph inputs too; onnxruntime then cannot treat
them as constants (no Conv+BN fusion), which would handicap it against TVM, which folds
them. ``speed.py`` and ``layouts.py`` both compare with it (``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import onnx
import onnxruntime as ort


def weights_as_constants(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with its initializers dropped from the graph inputs (changed in place)."""
    weights = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    return model


def one_thread_session(model: str | bytes) -> ort.InferenceSession:
    """An onnxruntime CPU session on one thread (a path or serialized model), errors-only logging."""
    ort.set_default_logger_severity(3)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
