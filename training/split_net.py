"""A SplitModel made trainable: each part (branches, merge head) as a Gluon SymbolBlock.

Fine-tuning starts from the partitioner's output, whose branch weights are channel slices
of the reference (:mod:`splitnet.partitioners.apply`). The parts keep their own symbols and
parameter names, so the trained weights go back into the same :class:`SplitModel` and from
there through the compile cache to the boards unchanged.

Branch dropout zeroes one branch's features for a random share of the samples, exactly as
the runtime's ``degrade`` policy does when a board is lost (zeros, no rescaling), so the head
learns to answer from the branches that are left.
"""

from __future__ import annotations

import warnings

import mxnet as mx
import numpy as np

from ..framework.split_model import Part, SplitModel, with_weights


def _trainable(part: Part) -> mx.gluon.SymbolBlock:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        block = mx.gluon.SymbolBlock(part.symbol, [mx.sym.var(n) for n in part.input_names])
        for name, param in block.collect_params().items():
            param.initialize(ctx=mx.cpu())
            param.set_data(mx.nd.array(part.params[name], dtype=np.float32))
        block(*[mx.nd.zeros(shape) for shape in part.input_shapes])  # finish deferred init (inference mode)
    block.hybridize(static_alloc=False)
    return block


class TrainableSplit:
    """``TrainableSplit(split, prefix)(x, keep)`` -> logits; ``to_split_model()`` after training.

    Parameter names in the parts carry the reference block's Gluon prefix (``resnetv10_``),
    which depends on how many models the process made before; ``params()`` and ``load()``
    use the names without it, so checkpoints and shipped files work in any process.
    """

    def __init__(self, split: SplitModel, prefix: str = "") -> None:
        self.split = split
        self.prefix = prefix
        self.branch_count = split.plan.n
        self.branches = [_trainable(p) for p in split.branches]
        self.head = _trainable(split.head)

    @property
    def blocks(self) -> list[mx.gluon.SymbolBlock]:
        return [*self.branches, self.head]

    @property
    def names(self) -> list[str]:
        return [p.name for p in (*self.split.branches, self.split.head)]

    def __call__(self, x: mx.nd.NDArray, keep: np.ndarray | None = None) -> mx.nd.NDArray:
        """Logits; ``keep`` (batch, N) of 0/1 multiplies each branch's features (branch dropout)."""
        features = [branch(x) for branch in self.branches]
        if keep is not None:
            features = [f * mx.nd.array(keep[:, i : i + 1]) for i, f in enumerate(features)]
        return self.head(*features)

    def params(self) -> dict[str, dict[str, np.ndarray]]:
        """Current weights by part name, parameter names without the prefix."""
        return {
            name: {k.removeprefix(self.prefix): p.data().asnumpy() for k, p in block.collect_params().items()}
            for name, block in zip(self.names, self.blocks, strict=True)
        }

    def load(self, weights: dict[str, dict[str, np.ndarray]]) -> None:
        for name, block in zip(self.names, self.blocks, strict=True):
            for key, param in block.collect_params().items():
                param.set_data(mx.nd.array(weights[name][key.removeprefix(self.prefix)], dtype=np.float32))

    def to_split_model(self) -> SplitModel:
        return with_weights(self.split, self.params(), self.prefix)


def branch_dropout_mask(batch: int, n: int, rate: float, rng: np.random.RandomState) -> np.ndarray | None:
    """(batch, n) keep-mask: each sample loses one random branch with probability ``rate``."""
    if rate <= 0.0 or n < 2:
        return None
    keep = np.ones((batch, n), dtype=np.float32)
    dropped = rng.uniform(size=batch) < rate
    keep[np.flatnonzero(dropped), rng.randint(0, n, size=batch)[dropped]] = 0.0
    return keep
