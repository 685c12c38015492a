"""Make TVMScript's ``@T.prim_func`` cheap to import in a big process.

The decorator calls ``inspect.stack()``, which reads source context for every frame on the
stack and, for frames with no module file (the import machinery's own), scans all of
``sys.modules`` each time. MetaSchedule imports ``tvm.s_tir.tensor_intrin`` (hundreds of
prim funcs) when the first tuning task is created; with mxnet loaded that import took
minutes here, and builder workers hit their timeout doing it. The decorator only ever reads
the source context of the frame two levels up (``is_defined_in_class``), so this stand-in
computes that one and leaves the others without context. Parsing results are unchanged.
"""

from __future__ import annotations

import inspect
import sys
import types

CONTEXT_FRAME = 2  # the only frame whose code_context TVMScript reads


def _stack(context: int = 1) -> list[inspect.FrameInfo]:
    frames = []
    frame = sys._getframe(1)
    while frame is not None:
        if len(frames) == CONTEXT_FRAME:
            info = inspect.getframeinfo(frame, context)
            frames.append(inspect.FrameInfo(frame, *info, positions=info.positions))
        else:  # no source lookup at all: getframeinfo's file search is the slow part
            code = frame.f_code
            frames.append(inspect.FrameInfo(frame, code.co_filename, frame.f_lineno, code.co_name, None, None))
        frame = frame.f_back
    return frames


def patch_tvmscript_stack() -> None:
    """Give TVMScript's prim_func decorator the cheap stack (idempotent)."""
    from tvm.tirx.script.parser import entry

    if getattr(entry.inspect, "_splitnet_fast", False):
        return
    shim = types.SimpleNamespace(**vars(inspect))
    shim.stack = _stack
    shim._splitnet_fast = True
    entry.inspect = shim


def warm_worker() -> None:
    """Builder/runner worker initializer: patch, then pay the tensor-intrinsic import once, up front."""
    patch_tvmscript_stack()
    import tvm.s_tir.tensor_intrin  # noqa: F401
