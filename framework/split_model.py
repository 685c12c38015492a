"""SplitModel: N branch networks and a merge head, each an MXNet symbol with its weights.

Each part is kept as plain data (symbol JSON + numpy weights) so it can be hashed for the
compile cache, exported to ONNX, and run in-process in MXNet as the reference that the
distributed result is checked against. Both live in the core because every stage after
partitioning hands them on: compile reads a Part, training swaps its weights, the runtime's
coded head reads the head's dense layers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import warnings
from dataclasses import dataclass
from functools import cached_property

import mxnet as mx
import numpy as np

from .images import Preprocessing
from .plan import SplitPlan


@dataclass(frozen=True)
class Part:
    """One compilable piece: a branch (input ``data``) or the head (inputs ``feat0..``).

    ``front``: set on a branch that takes uint8 frames (:mod:`splitnet.framework.wire`): the
    cast and this normalisation are compiled into its front, so its input is uint8 pixels.
    """

    name: str
    symbol_json: str
    params: dict[str, np.ndarray]
    aux_names: frozenset[str]
    input_names: tuple[str, ...]
    input_shapes: tuple[tuple[int, ...], ...]
    output_shape: tuple[int, ...]
    front: Preprocessing | None = None

    @property
    def input_dtype(self) -> str:
        return "uint8" if self.front is not None else "float32"

    @cached_property
    def content_hash(self) -> str:
        digest = hashlib.sha256(self.symbol_json.encode())
        for key in sorted(self.params):
            value = np.ascontiguousarray(self.params[key], dtype=np.float32)
            digest.update(key.encode())
            digest.update(str(value.shape).encode())
            digest.update(value.tobytes())
        digest.update(repr((self.input_names, self.input_shapes)).encode())
        if self.front is not None:  # a float32 part keeps the hash (and the cache entries) it had
            digest.update(repr(("front", self.front)).encode())
        return digest.hexdigest()

    @property
    def symbol(self) -> mx.sym.Symbol:
        return mx.sym.load_json(self.symbol_json)

    def mx_params(self) -> dict[str, mx.nd.NDArray]:
        return {k: mx.nd.array(v, dtype=np.float32) for k, v in self.params.items()}

    @cached_property
    def block(self) -> mx.gluon.SymbolBlock:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            block = mx.gluon.SymbolBlock(self.symbol, [mx.sym.var(n) for n in self.input_names])
            for name, param in block.collect_params().items():
                param.initialize(ctx=mx.cpu())
                param.set_data(mx.nd.array(self.params[name], dtype=np.float32))
        return block

    def __call__(self, *inputs: np.ndarray) -> np.ndarray:
        """Run this part in-process in MXNet (inference mode).

        A part with a ``front`` fed uint8 pixels normalises them first, as the compiled front
        does; a float32 frame is taken as normalised already (what the float32 wire sends).
        """
        if self.front is not None:
            inputs = tuple(self.front.apply(x) if x.dtype == np.uint8 else x for x in inputs)
        out = self.block(*[mx.nd.array(x, dtype=np.float32) for x in inputs])
        return out.asnumpy()

    @property
    def param_count(self) -> int:
        return int(sum(v.size for v in self.params.values()))


@dataclass(frozen=True)
class SplitModel:
    plan: SplitPlan
    branches: tuple[Part, ...]
    head: Part

    def features(self, x: np.ndarray) -> list[np.ndarray]:
        return [branch(x) for branch in self.branches]

    def merge(self, features: list[np.ndarray]) -> np.ndarray:
        return self.head(*features)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The split model end to end, in-process: the fidelity reference for remote runs."""
        return self.merge(self.features(x))


def with_weights(split: SplitModel, weights: dict[str, dict[str, np.ndarray]], prefix: str = "") -> SplitModel:
    """The same split (plan, symbols) with other weights, e.g. fine-tuned ones.

    ``weights`` maps part name -> parameter name without ``prefix`` (the reference block's
    Gluon prefix, which depends on how many models the process built before) -> array.
    """

    def swap(part: Part) -> Part:
        params = {
            k: np.ascontiguousarray(weights[part.name][k.removeprefix(prefix)], dtype=np.float32) for k in part.params
        }
        return dataclasses.replace(part, params=params)

    return dataclasses.replace(split, branches=tuple(swap(b) for b in split.branches), head=swap(split.head))
