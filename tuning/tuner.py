"""Tune a split model's branches and head with MetaSchedule, resumably, with a progress bar.

Tasks are extracted from every part (branches and head) in the same lowered form the
compile stage applies records to, then merged by structure: equal-width branches have the
same loop nests (their weights are arguments, not part of the task), so N identical branches
cost one set of tasks with N times the weight.

The full search history lives in a work folder (``tuning/.work/<key>/``, not shipped): the
JSON database MetaSchedule commits to after every batch, and ``state.json`` with the trials
spent. Ctrl-C therefore loses at most one batch; ``--resume`` carries on from the history.
What ships is the pruned database, the best record per workload, written next to ``key.json``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms
from tvm_ffi import structural_hash

from ..framework.compile import lowered, to_onnx, to_relax
from ..framework.errors import SplitnetError
from ..framework.layout import DEFAULT_LAYOUT
from ..framework.quiet import quiet_native
from ..framework.split_model import Part
from ..framework.targets import to_tvm
from .board_runner import Boards, board_runner
from .fast_script import patch_tvmscript_stack, warm_worker
from .key import DB_FILES, KEY_FILE, TuningKey

WORK_FOLDER = ".work"
STATE_FILE = "state.json"
# A smaller evolutionary search than MetaSchedule's default (512 x 4 generations): on a small
# machine the search, not the measurement, was the bottleneck, and the candidates it sends
# are nearly as good. Build and run timeouts allow for a machine that is busy with other work.
POPULATION = 256
GENERATIONS = 2
BUILD_TIMEOUT_S = 120.0
RUN_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class TuneTask:
    """One distinct loop nest to tune, with how many times one frame runs it."""

    name: str
    extracted: ms.ExtractedTask
    weight: int


def extract_tasks(parts: list[Part], target: dict, layout: str = DEFAULT_LAYOUT) -> list[TuneTask]:
    """Distinct tuning tasks over ``parts`` with convolutions in ``layout``; identical nests
    (equal branches) are merged."""
    tvm_target = to_tvm(target)
    merged: dict[int, TuneTask] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for part in parts:
            onnx_model = to_onnx(part, Path(scratch) / f"{part.name}.onnx")
            mod = lowered(to_relax(part, onnx_model, layout), tvm_target)
            for task in ms.relax_integration.extract_tasks(mod, tvm_target):
                if task.mod.attrs and task.mod.attrs.get("tirx.is_scheduled", False):
                    continue
                digest = structural_hash(task.dispatched[0])
                seen = merged.get(digest)
                weight = int(task.weight) + (seen.weight if seen else 0)
                merged[digest] = TuneTask(task.task_name, seen.extracted if seen else task, weight)
    return list(merged.values())


@dataclass
class TuneState:
    """Progress kept across interruptions: trials spent so far and the best latency per task."""

    trials_done: int = 0
    best_s: dict[str, float] = field(default_factory=dict)  # task name -> best seconds measured

    @staticmethod
    def load(path: Path) -> TuneState:
        if not path.exists():
            return TuneState()
        data = json.loads(path.read_text())
        return TuneState(int(data.get("trials_done", 0)), dict(data.get("best_s", {})))

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"trials_done": self.trials_done, "best_s": self.best_s}))
        os.replace(tmp, path)


@dataclass(frozen=True)
class TuneUpdate:
    """What the progress bar shows after each measured batch."""

    trials_done: int
    trials_total: int
    tasks_measured: int
    tasks_total: int
    estimate_ms: float  # sum over measured tasks of weight x best latency


def _progress_callback(tasks: list[TuneTask], state: TuneState, state_path: Path, total: int, report):
    @derived_object
    class Progress(ms.measure_callback.PyMeasureCallback):
        def apply(self, task_scheduler, task_id, measure_candidates, builder_results, runner_results) -> None:
            name = tasks[task_id].name
            for result in runner_results:
                if result.error_msg is None and result.run_secs:
                    seconds = sum(float(s) for s in result.run_secs) / len(result.run_secs)
                    best = state.best_s.get(name)
                    state.best_s[name] = seconds if best is None else min(best, seconds)
            state.trials_done += len(measure_candidates)
            state.save(state_path)
            estimate = sum(t.weight * state.best_s[t.name] for t in tasks if t.name in state.best_s) * 1e3
            report(TuneUpdate(state.trials_done, total, len(state.best_s), len(tasks), estimate))

    return Progress()


class TuningStopped(Exception):
    """Raised into MetaSchedule at its next build, after the user pressed Ctrl-C."""


def _stoppable_builder(inner, stop: threading.Event):
    """A builder that refuses the next round once ``stop`` is set.

    A KeyboardInterrupt raised by Python's default handler lands wherever the interpreter
    happens to be, often inside a callback from MetaSchedule's C++ loop, and crashed the
    process (SIGSEGV). So during tuning Ctrl-C only sets ``stop``; the next round's build
    (every few seconds) raises a plain exception, which unwinds the C++ loop cleanly.
    """

    @derived_object
    class Stoppable(ms.builder.PyBuilder):
        def build(self, build_inputs):
            if stop.is_set():
                raise TuningStopped("interrupted")
            return inner.build(build_inputs)

    return Stoppable()


@contextlib.contextmanager
def _ctrl_c_sets(stop: threading.Event):
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def work_folder(root: Path, key: TuningKey) -> Path:
    return root / WORK_FOLDER / key.folder_name


def tune(
    parts: list[Part],
    key: TuningKey,
    root: Path,
    trials: int,
    *,
    per_task: int | None = None,
    per_batch: int = 16,
    resume: bool = False,
    seed: int = 0,
    report: Callable[[TuneUpdate], None] = lambda update: None,
    on_tasks: Callable[[list[TuneTask], TuneState], None] = lambda tasks, state: None,
    boards: Boards | None = None,
) -> Path:
    """Tune ``parts`` for ``key.target`` until ``trials`` trials in all have been measured.

    Returns the shipped database folder (``root/<key.folder_name>``), pruned to the best
    record per workload. Interrupted runs keep their history; pass ``resume=True`` to go on.
    Candidates are timed on this machine, or with ``boards`` on those boards (:mod:`board_runner`).
    """
    work = work_folder(root, key)
    if not resume and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    state_path = work / STATE_FILE
    state = TuneState.load(state_path)
    tasks = extract_tasks(parts, key.target, key.layout)
    if not tasks:
        raise SplitnetError(f"{key.model} has no tunable tasks for this target", "nothing to tune")
    # The task scheduler starts its rounds from the first task: after a resume, the tasks not
    # measured yet go first, so the new trials go where the last run did not get to.
    tasks.sort(key=lambda t: t.name in state.best_s)
    on_tasks(tasks, state)
    patch_tvmscript_stack()  # before MetaSchedule imports its tensor intrinsics (minutes otherwise)
    # MetaSchedule copies its console level from this logger: keep its per-round INFO lines in
    # the work folder's logs/ and off the user's terminal, where the progress bar is.
    logging.getLogger("tvm.s_tir.meta_schedule").setLevel(logging.WARNING)
    remaining = trials - state.trials_done
    # Candidates are timed in worker processes that inherit this: as many threads as the board has cores.
    os.environ["TVM_NUM_THREADS"] = str(key.target.get("num-cores", 1))
    database = ms.database.JSONDatabase(work_dir=str(work), module_equality="structural")
    stop = threading.Event()
    try:
        if remaining > 0:
            contexts, _ = ms.relax_integration.extracted_tasks_to_tune_contexts(
                [t.extracted for t in tasks],
                str(work),
                strategy=ms.search_strategy.EvolutionarySearch(
                    population_size=POPULATION, genetic_num_iters=GENERATIONS
                ),
                seed=seed + state.trials_done,
                num_threads=1,
            )
            with quiet_native(), _ctrl_c_sets(stop):
                ms.tune.tune_tasks(
                    tasks=contexts,
                    task_weights=[float(t.weight) for t in tasks],
                    work_dir=str(work),
                    max_trials_global=remaining,
                    max_trials_per_task=per_task or max(per_batch, 2 * trials // len(tasks)),
                    num_trials_per_iter=per_batch,
                    database=database,
                    builder=_stoppable_builder(
                        ms.builder.LocalBuilder(
                            max_workers=os.cpu_count() or 1, timeout_sec=BUILD_TIMEOUT_S, initializer=warm_worker
                        ),
                        stop,
                    ),
                    runner=ms.runner.LocalRunner(timeout_sec=RUN_TIMEOUT_S, initializer=warm_worker)
                    if boards is None
                    else board_runner(boards),
                    measure_callbacks=[
                        *ms.measure_callback.MeasureCallback.create("default"),
                        _progress_callback(tasks, state, state_path, trials, report),
                    ],
                )
    except Exception:
        if not stop.is_set():
            raise
    finally:
        shipped = prune(database, root / key.folder_name, key)
    if stop.is_set():
        raise KeyboardInterrupt
    return shipped


def prune(database: ms.database.Database, folder: Path, key: TuningKey) -> Path:
    """Write only the best record of every workload into ``folder`` (with its key), atomically."""
    staging = Path(tempfile.mkdtemp(prefix=".prune-", dir=folder.parent))
    try:
        out = ms.database.JSONDatabase(
            path_workload=str(staging / DB_FILES[0]), path_tuning_record=str(staging / DB_FILES[1])
        )
        kept = 0
        seen: set[int] = set()
        for record in database.get_all_tuning_records():
            digest = structural_hash(record.workload.mod)
            if digest in seen:
                continue
            seen.add(digest)
            best = database.get_top_k(record.workload, 1)
            if not best:
                continue
            workload = out.commit_workload(record.workload.mod)
            top = best[0]
            out.commit_tuning_record(
                ms.database.TuningRecord(top.trace, workload, top.run_secs, top.target, top.args_info)
            )
            kept += 1
        (staging / KEY_FILE).write_text(json.dumps({**key.to_json(), "records": kept, "written": time.time()}))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder
