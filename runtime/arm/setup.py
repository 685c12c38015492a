"""Running the set-up's steps in order, skipping those already done, timing each."""

from __future__ import annotations

import time
from collections.abc import Callable

from ...framework.errors import SplitnetError
from .paths import ArmPaths
from .steps import Context, Step, StepResult


def run_steps(paths: ArmPaths, steps: list[Step], ctx: Context, say: Callable[[str], None] = print) -> list[StepResult]:
    """Each step in turn: skipped when its outputs are there, else run and checked after."""
    paths.root.mkdir(parents=True, exist_ok=True)
    results = []
    for i, step in enumerate(steps, 1):
        head = f"[{i}/{len(steps)}] {step.name}: {step.what}"
        if step.done(paths):
            say(f"{head}: already done")
            results.append(StepResult(step.name, "skipped", "already done", 0.0, 0.0))
            continue
        say(f"{head} ...")
        start = time.monotonic()
        detail, mb = step.run(paths, ctx)
        seconds = time.monotonic() - start
        if not step.done(paths):  # a command that exits 0 and leaves nothing is a failure too
            raise SplitnetError(
                f"setup step {step.name} finished but its outputs are missing (log: {ctx.log_dir / step.name}.log)",
                "read the log, remove the cache folder's partial files and rerun splitrun setup arm",
            )
        say(f"{head}: done in {seconds:.0f} s")
        results.append(StepResult(step.name, "done", detail, seconds, mb))
    return results
