"""How a build lays out its convolutions' data: NCHW (the ONNX graph's own) or NHWC.

The layout changes the loop nests MetaSchedule tunes, not the answers: on x86,
``python benchmarks/layouts.py`` found NHWC convolutions as fast as NCHW ones on ResNet18's
wide early layers and up to 1.9x faster on its deep, narrow ones within the same trials
(with the channels innermost, the CPU's vectors run along an axis that stays long). A
tuning database is tuned in one layout and says which in its ``key.json``, so a build
applies its records to the graph in that same layout; a build with no database keeps NCHW.
Transposes are put only where a convolution meets an op that must stay NCHW (the frame's
input, the flatten before the head): elementwise ops, pooling and batch-norm-folded bias
adds follow the convolutions' layout.
"""

from __future__ import annotations

import tvm
from tvm import relax

from .errors import SplitnetError

LAYOUTS = ("NCHW", "NHWC")
DEFAULT_LAYOUT = "NCHW"  # the graph as exported; what an untuned build uses

# Relax's desired layouts per op: data layout, then kernel layout (HWIO: TOPI's NHWC kernel).
_DESIRED = {"NHWC": {"relax.nn.conv2d": ["NHWC", "HWIO"]}}


def check_layout(layout: str) -> str:
    """``layout`` itself, or a one-line error naming the layouts there are."""
    if layout not in LAYOUTS:
        raise SplitnetError(f"unknown layout {layout!r}", f"use one of: {', '.join(LAYOUTS)}")
    return layout


def with_layout(mod: tvm.IRModule, layout: str) -> tvm.IRModule:
    """``mod`` with its convolutions in ``layout`` (the module itself for NCHW)."""
    if check_layout(layout) == DEFAULT_LAYOUT:
        return mod
    return relax.transform.ConvertLayout(_DESIRED[layout])(mod)
