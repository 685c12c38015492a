"""Compile one Part for one target: MXNet symbol -> ONNX -> Relax -> tvm.compile -> library.

Boards whose CPU differs from the host's are cross-compiled: a ``.tar`` export holds object
files (the board links them when it loads them) and needs no toolchain here; a ``.so`` is
linked with Debian's cross g++ (``arm-linux-gnueabihf-g++``), which must be installed.

Results are cached on disk by a content hash of the part (symbol and weights), the target,
the export format, the tuning database (when one is given) and the tool versions, so a
second run with the same inputs loads the library instead of recompiling.

Building lives here and loading in :mod:`artifact`: the runtime imports only the latter, so
that it runs what the orchestration built and never compiles by itself (the import-linter
contract in ``pyproject.toml`` says so).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import mxnet as mx
import numpy as np
import onnx
import tvm
from tvm import relax
from tvm.relax.frontend.onnx import from_onnx

from .artifact import CompiledArtifact, LocalModule
from .cache import cache_root, content_key
from .errors import SplitnetError
from .layout import DEFAULT_LAYOUT, with_layout
from .onnx_fold import fold_batch_norm
from .quiet import quiet_native
from .split_model import Part
from .targets import EXPORT_FORMATS, cross_cxx, describe, target_key, to_tvm
from .wire import prepend_front

__all__ = ["CompiledArtifact", "LocalModule", "build_cached", "compile_part", "lowered", "to_onnx", "to_relax"]

COMPILER_VERSION = "3"  # bump when this module changes what it produces


def to_onnx(part: Part, path: Path) -> onnx.ModelProto:
    """Export a part with mxnet's ONNX exporter (initializers embedded); a part with a
    ``front`` (uint8 frames) gets the cast and its normalisation in front of the graph."""
    with quiet_native():
        mx.onnx.export_model(
            part.symbol,
            part.mx_params(),
            in_shapes=[list(s) for s in part.input_shapes],
            in_types=[np.float32] * len(part.input_shapes),
            onnx_file_path=str(path),
        )
    model = onnx.load(str(path))
    if part.front is not None:
        prepend_front(model, part.input_names[0], part.front)
    return model


def to_relax(part: Part, model: onnx.ModelProto, layout: str = DEFAULT_LAYOUT) -> tvm.IRModule:
    """The part as a Relax module, batch norm folded into the convolutions first, its
    convolutions in ``layout`` (:mod:`layout`: a tuning database says which it was tuned in)."""
    fold_batch_norm(model)
    shapes = {name: list(shape) for name, shape in zip(part.input_names, part.input_shapes, strict=True)}
    return with_layout(from_onnx(model, shape_dict=shapes), layout)


def lowered(mod: tvm.IRModule, target: tvm.target.Target) -> tvm.IRModule:
    """Legalized and fused, as MetaSchedule sees it: the form tuning extracts tasks from and
    the form tuning records are applied to (the same passes as TVM's static-shape tuning)."""
    with target:
        return tvm.transform.Sequential(
            [
                relax.transform.DecomposeOpsForInference(),
                relax.transform.CanonicalizeBindings(),
                relax.pipeline.zero_pipeline(),
            ]
        )(mod)


def _apply_tuning(mod: tvm.IRModule, target: tvm.target.Target, database: Path) -> tvm.IRModule:
    """Apply a MetaSchedule database's records (``splitrun tune`` writes them)."""
    from tvm.s_tir import meta_schedule as ms

    db = ms.database.JSONDatabase(
        path_workload=str(database / "database_workload.json"),
        path_tuning_record=str(database / "database_tuning_record.json"),
    )
    mod = lowered(mod, target)
    with target, db:
        return relax.transform.MetaScheduleApplyDatabase()(mod)


def artifact_key(part: Part, target: dict, fmt: str, database: Path | None, layout: str = DEFAULT_LAYOUT) -> str:
    db_digest = ""
    if database is not None:
        db_digest = content_key(*(p.read_text() for p in sorted(database.glob("database_*.json"))))
    parts = [COMPILER_VERSION, part.content_hash, target_key(target), fmt, db_digest, tvm.__version__, mx.__version__]
    if layout != DEFAULT_LAYOUT:  # NCHW builds keep the keys they had
        parts.append(layout)
    return content_key(*parts)


def _exporter(target: dict, fmt: str):
    """``fcompile`` for export_library: None (host g++ or plain tar) or a cross g++ for a .so."""
    cxx = cross_cxx(target)
    if fmt == "tar" or cxx is None:
        return None
    if shutil.which(cxx) is None:
        raise SplitnetError(
            f"a .so for {describe(target)} needs the cross compiler {cxx}, which is not installed",
            f"install it (apt install g++-{cxx.removesuffix('-g++')}) or export this board's code as tar",
        )
    from tvm.support import cc

    return cc.cross_compiler(cxx)


def _cached_library(entry: Path, fmt: str) -> Path | None:
    if not (entry / "meta.json").exists():
        return None
    return next(iter(sorted(entry.glob(f"*.{fmt}"))), None)


def build_cached(
    name: str,
    key: str,
    make_module: Callable[[Path], tvm.IRModule],
    target: dict,
    fmt: str,
    cache_dir: Path | None = None,
    meta: dict | None = None,
) -> tuple[Path, bool]:
    """The library for ``key`` in the cache, building it with ``make_module`` if missing.

    Built into a staging folder, then renamed into place (never a half entry); returns the
    library path and whether it came from the cache.
    """
    if fmt not in EXPORT_FORMATS:
        raise SplitnetError(f"unknown export format {fmt!r}", f"use one of: {', '.join(EXPORT_FORMATS)}")
    entry = (cache_dir or cache_root()) / key[:2] / key
    library = entry / f"{name}.{fmt}"
    cached = _cached_library(entry, fmt)
    if cached is not None:  # the same content under another part's name is the same library
        return cached, True
    fcompile = _exporter(target, fmt)
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key[:8]}-", dir=entry.parent))
    try:
        mod = make_module(staging)
        with quiet_native():
            executable = tvm.compile(mod, target=to_tvm(target))
            executable.export_library(str(staging / library.name), fcompile=fcompile)
        for leftover in staging.glob("*.onnx"):
            leftover.unlink()
        (staging / "meta.json").write_text(json.dumps({"name": name, "target": target, "format": fmt, **(meta or {})}))
        os.replace(staging, entry)
    except OSError:
        cached = _cached_library(entry, fmt)
        if cached is None:  # not a lost race with another process: a real failure
            raise
        library = cached
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return library, False


def compile_part(
    part: Part,
    target: dict,
    fmt: str = "so",
    database: Path | None = None,
    cache_dir: Path | None = None,
    layout: str = DEFAULT_LAYOUT,
) -> CompiledArtifact:
    """Compile (or fetch from the cache) the library for ``part`` on ``target``, its
    convolutions in ``layout`` (the one ``database`` was tuned in, when one is given)."""

    def make_module(staging: Path) -> tvm.IRModule:
        mod = to_relax(part, to_onnx(part, staging / f"{part.name}.onnx"), layout)
        if database is not None:
            mod = _apply_tuning(mod, to_tvm(target), database)
        return mod

    key = artifact_key(part, target, fmt, database, layout)
    library, cached = build_cached(
        part.name, key, make_module, target, fmt, cache_dir, meta={"tuned": database is not None, "layout": layout}
    )
    return CompiledArtifact(
        part=part.name,
        path=library,
        target=target,
        key=key,
        input_names=part.input_names,
        input_shapes=part.input_shapes,
        output_shape=part.output_shape,
        tuned=database is not None,
        cached=cached,
    )
