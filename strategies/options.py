"""What one run takes, as the CLI, the benchmarks and the Python API pass it.

:class:`RunOptions` is plain data: nothing is checked when it is made. The split it names
(model, N, widths, multiple, placement) is checked once, by :meth:`RunOptions.request`,
into a :class:`~splitnet.strategies.request.SplitRequest` that every stage after trusts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..framework.shares import DEFAULT_MULTIPLE
from ..framework.wire import DEFAULT_WIRE
from ..runtime.chaos import ChaosEvent, RandomChaos
from ..runtime.fleet import DEFAULT_WAIT_S
from .request import SplitRequest

DEFAULT_MODEL = "resnet18_v1"


@dataclass(frozen=True)
class RunOptions:
    model: str = DEFAULT_MODEL
    branches: int = 2
    widths: tuple[float, ...] | None = None
    multiple: int = DEFAULT_MULTIPLE
    images: Path | None = None
    runs: int = 20
    warmup: int = 3
    seed: int = 0
    compute_repeat: int = 5
    inventory: Path | str | None = None  # None: the built-in two-PYNQ inventory
    placement: str | None = None  # None: the inventory's choice, else round-robin
    wait_s: float = DEFAULT_WAIT_S
    policy: str | None = None  # None: the inventory's choice, else spare
    timeout_s: float | None = None  # None: derived from the calls of the verify pass
    chaos: tuple[ChaosEvent | RandomChaos, ...] = ()
    depth: int = 2  # frames in flight in the steady-state phase (1: no such phase)
    audit: int = 0  # every K-th frame re-checked against the in-process split during the run (0: off)
    wire: str = DEFAULT_WIRE  # frames on the wire: uint8 pixels (normalised on the board) or float32

    @property
    def pipelined_runs(self) -> int:
        """Frames of the steady-state phase: ``runs`` again, when more than one is in flight."""
        return self.runs if self.depth > 1 else 0

    def frames_sent(self, images: int) -> int:
        """Every frame a run sends: the verify pass over ``images``, warm-up, timed, pipelined."""
        return images + self.warmup + self.runs + self.pipelined_runs

    def request(self, strategy: str = "branch") -> SplitRequest:
        """The split these options name, checked (the one place a run checks it)."""
        return SplitRequest.of(self.model, self.branches, self.widths, self.multiple, strategy, self.placement)
