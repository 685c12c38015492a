"""Two fixed kernels the runtime runs beside the model's parts, written in TVMScript.

* the **probe**: one 3x3 convolution (32 -> 32 channels, 28x28) and a ReLU, which a board
  times to measure its speed (``profile`` placement, ``splitrun boards``);
* the **matvec** ``x @ w.T``: one library per target computes any block of the coded head's
  dense layers, the block's weights being bound when it is loaded.

They are built here, like every part, through the compile cache; the runtime is handed the
artifacts (it never compiles).
"""

from __future__ import annotations

from pathlib import Path

import tvm
from tvm.script import ir as I  # noqa: N812 (TVMScript's own spelling)
from tvm.script import relax as R  # noqa: N812

from .artifact import CompiledArtifact
from .cache import content_key
from .compile import build_cached
from .targets import target_key

PROBE_VERSION = "1"
MATVEC_VERSION = "1"
PROBE_X, PROBE_W = (1, 32, 28, 28), (32, 32, 3, 3)


@I.ir_module
class _Probe:
    @R.function
    def main(x: R.Tensor((1, 32, 28, 28), "float32"), w: R.Tensor((32, 32, 3, 3), "float32")) -> R.Tensor(
        (1, 32, 28, 28), "float32"
    ):
        with R.dataflow():
            y = R.nn.conv2d(x, w, padding=(1, 1))
            z = R.nn.relu(y)
            R.output(z)
        return z


@I.ir_module
class _Matvec:
    @R.function
    def main(x: R.Tensor((1, "n"), "float32"), w: R.Tensor(("m", "n"), "float32")) -> R.Tensor((1, "m"), "float32"):
        with R.dataflow():
            y = R.matmul(x, R.permute_dims(w))
            R.output(y)
        return y


def compile_probe(target: dict, fmt: str = "so", cache_dir: Path | None = None) -> CompiledArtifact:
    """The probe convolution for ``target`` (inputs ``x`` and ``w``, same-size output)."""
    key = content_key("probe", PROBE_VERSION, target_key(target), fmt, tvm.__version__)
    library, cached = build_cached("probe", key, lambda _: _Probe, target, fmt, cache_dir)
    return CompiledArtifact(
        part="probe",
        path=library,
        target=target,
        key=key,
        input_names=("x", "w"),
        input_shapes=(PROBE_X, PROBE_W),
        output_shape=PROBE_X,
        tuned=False,
        cached=cached,
    )


def compile_matvec(target: dict, fmt: str = "so", cache_dir: Path | None = None) -> CompiledArtifact:
    """One library per target computes any block: the block's weights are bound at load."""
    key = content_key("matvec", MATVEC_VERSION, target_key(target), fmt, tvm.__version__)
    library, cached = build_cached("matvec", key, lambda _: _Matvec, target, fmt, cache_dir)
    return CompiledArtifact("matvec", library, target, key, ("x", "w"), ((1, -1), (-1, -1)), (1, -1), False, cached)
