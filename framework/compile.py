"""Compile one Part for one target: MXNet symbol -> ONNX -> Relax -> tvm.compile -> library.

Results are cached on disk by a content hash of the part (symbol and weights), the target,
the export format, the tuning database (when one is given) and the tool versions, so a
second run with the same inputs loads the library instead of recompiling.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mxnet as mx
import numpy as np
import onnx
import tvm
from splitnet.framework.cache import cache_root, content_key
from splitnet.framework.errors import SplitnetError
from splitnet.framework.quiet import quiet_native
from splitnet.framework.targets import target_key, to_tvm
from splitnet.partitioners.split_model import Part
from tvm import relax
from tvm.relax.frontend.onnx import from_onnx

COMPILER_VERSION = "1"  # bump when this module changes what it produces
EXPORT_FORMATS = ("so", "tar")


@dataclass(frozen=True)
class CompiledArtifact:
    """A compiled part on disk, ready to upload to a board or load locally."""

    part: str
    path: Path
    target: dict
    key: str
    input_names: tuple[str, ...]
    input_shapes: tuple[tuple[int, ...], ...]
    output_shape: tuple[int, ...]
    tuned: bool
    cached: bool


def to_onnx(part: Part, path: Path) -> onnx.ModelProto:
    """Export a part with mxnet's ONNX exporter (initializers embedded)."""
    with quiet_native():
        mx.onnx.export_model(
            part.symbol,
            part.mx_params(),
            in_shapes=[list(s) for s in part.input_shapes],
            in_types=[np.float32] * len(part.input_shapes),
            onnx_file_path=str(path),
        )
    return onnx.load(str(path))


def to_relax(part: Part, model: onnx.ModelProto) -> tvm.IRModule:
    shapes = {name: list(shape) for name, shape in zip(part.input_names, part.input_shapes, strict=True)}
    return from_onnx(model, shape_dict=shapes)


def _apply_tuning(mod: tvm.IRModule, target: tvm.target.Target, database: Path) -> tvm.IRModule:
    """Apply a MetaSchedule database's records (the tuning stage writes them)."""
    from tvm.s_tir import meta_schedule as ms

    db = ms.database.JSONDatabase(
        path_workload=str(database / "database_workload.json"),
        path_tuning_record=str(database / "database_tuning_record.json"),
    )
    with target, db:
        return relax.transform.MetaScheduleApplyDatabase()(mod)


def artifact_key(part: Part, target: dict, fmt: str, database: Path | None) -> str:
    db_digest = ""
    if database is not None:
        db_digest = content_key(*(p.read_text() for p in sorted(database.glob("database_*.json"))))
    return content_key(
        COMPILER_VERSION, part.content_hash, target_key(target), fmt, db_digest, tvm.__version__, mx.__version__
    )


def _build(part: Part, target: dict, fmt: str, database: Path | None, entry: Path, library: str) -> None:
    """Build into a staging folder, then rename it into place (never a half entry)."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{entry.name[:8]}-", dir=entry.parent))
    try:
        mod = to_relax(part, to_onnx(part, staging / f"{part.name}.onnx"))
        tvm_target = to_tvm(target)
        if database is not None:
            mod = _apply_tuning(mod, tvm_target, database)
        with quiet_native():
            executable = tvm.compile(mod, target=tvm_target)
            executable.export_library(str(staging / library))
        (staging / f"{part.name}.onnx").unlink()
        (staging / "meta.json").write_text(
            json.dumps({"part": part.name, "target": target, "format": fmt, "tuned": database is not None})
        )
        os.replace(staging, entry)
    except OSError:
        if not (entry / library).exists():  # not a lost race with another process: a real failure
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def compile_part(
    part: Part, target: dict, fmt: str = "so", database: Path | None = None, cache_dir: Path | None = None
) -> CompiledArtifact:
    """Compile (or fetch from the cache) the library for ``part`` on ``target``."""
    if fmt not in EXPORT_FORMATS:
        raise SplitnetError(f"unknown export format {fmt!r}", f"use one of: {', '.join(EXPORT_FORMATS)}")
    key = artifact_key(part, target, fmt, database)
    entry = (cache_dir or cache_root()) / key[:2] / key
    library = entry / f"{part.name}.{fmt}"
    meta = entry / "meta.json"
    cached = library.exists() and meta.exists()
    if not cached:
        _build(part, target, fmt, database, entry, library.name)
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


def to_tensors(inputs, dev) -> list:
    """numpy inputs as float32 TVM tensors on ``dev`` (local or remote)."""
    return [tvm.runtime.tensor(np.ascontiguousarray(x, dtype=np.float32), dev) for x in inputs]


class LocalModule:
    """A compiled artifact loaded in this process (the merge head runs this way)."""

    def __init__(self, artifact: CompiledArtifact) -> None:
        with quiet_native():
            self._lib = tvm.runtime.load_module(str(artifact.path))
        self._dev = tvm.cpu(0)
        self._vm = relax.VirtualMachine(self._lib, self._dev)

    def __call__(self, *inputs: np.ndarray) -> np.ndarray:
        return self._vm["main"](*to_tensors(inputs, self._dev)).numpy()
