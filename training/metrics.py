"""Accuracy figures from logits: top-k, agreement with the reference, batched prediction."""

from __future__ import annotations

from collections.abc import Callable

import mxnet as mx
import numpy as np

EVAL_BATCH = 128


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of rows whose label is among the ``k`` highest logits (k capped at the classes)."""
    k = min(k, logits.shape[1])
    top = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=1)))


def agreement(logits: np.ndarray, reference: np.ndarray) -> float:
    """Share of rows whose top-1 equals the reference's top-1."""
    return float(np.mean(logits.argmax(axis=1) == reference.argmax(axis=1)))


def predict(forward: Callable[[mx.nd.NDArray], mx.nd.NDArray], images: np.ndarray, batch: int = EVAL_BATCH):
    """Logits for every image, in inference mode (BatchNorm uses its running statistics)."""
    out = [forward(mx.nd.array(images[i : i + batch])).asnumpy() for i in range(0, len(images), batch)]
    return np.concatenate(out)
