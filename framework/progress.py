"""Progress on stderr and stage timing, shared by every long job.

Each job shows its stages as rich progress bars on the shared stderr console
(:mod:`console`), so stdout carries only results. ``run_bars`` is the branch run's (with an
ETA), ``stage_bars`` the other strategies', ``eval_bars`` the accuracy passes'.
:class:`Stopwatch` adds up the wall time of named stages for the reports.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from .console import console

BAR_REFRESH_HZ = 4  # a redraw costs the host ~2 ms of CPU; boards that share its cores feel rich's default 10/s


def run_bars() -> Progress:
    """The branch run's bars: probe, export + compile, upload, frames."""
    return Progress(
        TextColumn("{task.description:<18}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        refresh_per_second=BAR_REFRESH_HZ,
    )


def stage_bars() -> Progress:
    """Progress for the spatial and pipeline strategies, in the branch run's style."""
    return Progress(
        TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )


def eval_bars() -> Progress:
    """Progress for passes over a held-out set (one bar per pass)."""
    return Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


class Stopwatch:
    """Wall seconds per named stage; a stage entered twice adds up."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
