"""Compile a part of a split with the tuning database that matches its build, and say which.

The lookup lives in :mod:`splitnet.tuning.key`; this is the one place the run, recovery and
benchmarks go through, so every build of a part is tuned the same way.
"""

from __future__ import annotations

from splitnet.framework.compile import CompiledArtifact, compile_part
from splitnet.partitioners.split_model import Part
from splitnet.tuning.key import find_database, key_for, untuned_note


def compile_tuned(split, part: Part, target: dict, fmt: str = "so") -> tuple[CompiledArtifact, str]:
    """``part`` of ``split`` built for ``target``: the artifact and a note naming its database."""
    key = key_for(split, target)
    match = find_database(key)
    artifact = compile_part(part, target, fmt, database=match.path if match else None)
    return artifact, match.note if match else untuned_note(key)
