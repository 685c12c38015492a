"""A split model on boards, as a context manager you call: :func:`deploy` and :class:`Deployed`.

``with splitnet.deploy(split, inventory="two-pynq") as boards:`` starts the inventory's local
boards (and waits for its remote ones), builds every part for its board through the deploy
path (:mod:`splitnet.strategies.deploy`: the tuning database that matches, the compile
cache), uploads them and returns a callable. Each call sends one frame through the boards
under the recovery policy and checks the answer against the same split run in-process, as
``splitrun`` checks every frame; :meth:`Deployed.report` says how it went. Leaving the
block gives the sessions back and stops the local boards, whatever happened inside it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..framework.errors import SplitnetError
from ..framework.images import preprocess
from ..framework.progress import run_bars
from ..framework.report import LatencyStats
from ..framework.split_model import SplitModel
from ..framework.verify import FIDELITY_ATOL
from ..runtime.fleet import DEFAULT_WAIT_S, Fleet
from ..runtime.inventory_file import resolve_inventory
from ..runtime.policies import DEFAULT_POLICY
from ..strategies.deploy import Deployment, deploy_split
from ..zoo import get_model_spec

Input = np.ndarray | Image.Image | str | Path


@dataclass(frozen=True)
class DeployReport:
    """What a :class:`Deployed` did: where each branch ran and how every frame went."""

    model: str
    n: int
    inventory: str
    boards: tuple[str, ...]  # the board answering for each branch now (after any recovery)
    policy: str
    frames: int
    degraded: int  # frames answered without a lost branch (degrade policy)
    latency: LatencyStats  # input to logits, every frame
    max_abs_diff: float  # every exact answer against the in-process split (MXNet)
    faults: tuple[dict, ...] = ()
    tuning: tuple[str, ...] = ()
    dead_boards: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """Every exact answer equals the in-process split within the fidelity tolerance (1e-4)."""
        return self.max_abs_diff <= FIDELITY_ATOL

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}

    def __str__(self) -> str:
        check = "PASS" if self.ok else "FAIL"
        lines = [
            f"{self.model} N={self.n} on {self.inventory}: branches on {', '.join(self.boards)}",
            f"{self.frames} frames ({self.degraded} degraded), p50 {self.latency.p50_ms:.2f} ms, "
            f"p99 {self.latency.p99_ms:.2f} ms; policy {self.policy}",
            f"boards vs in-process split: max |diff| {self.max_abs_diff:.2e} ({check}, tolerance {FIDELITY_ATOL:.0e})",
        ]
        lines += [f"fault at frame {f['frame']}: {f['board']} {f['kind']} -> {f['action']}" for f in self.faults]
        return "\n".join(lines)


class Deployed:
    """The boards answering for a split: ``deployed(x)`` -> logits of shape ``(1, classes)``."""

    def __init__(self, split: SplitModel, inventory=None, policy: str | None = None, wait_s: float = DEFAULT_WAIT_S):
        self.split = split
        self.inventory = resolve_inventory(inventory)
        self.policy = policy or self.inventory.policy or DEFAULT_POLICY
        self.fleet = Fleet(self.inventory, wait_s=wait_s)
        self.deployment: Deployment | None = None
        self._seconds: list[float] = []
        self._degraded = 0
        self._worst = 0.0

    def __enter__(self) -> Deployed:
        try:
            with run_bars() as progress:  # on stderr: export + compile, upload
                self.fleet.start()
                self.deployment = deploy_split(
                    self.split, self.inventory, self.fleet.sessions(), self.policy, progress, self.fleet.reacquire
                )
        except BaseException:
            self.fleet.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Give the sessions back and stop the local boards (leaving the ``with`` block does this)."""
        if self.deployment is not None:
            self.deployment.close()
        self.fleet.stop()

    def tensor(self, x: Input) -> np.ndarray:
        """``x`` as the model's input: an image (or image file) is preprocessed as ``splitrun --images`` does."""
        shape = tuple(self.split.plan.input_shape)
        if isinstance(x, str | Path):
            with Image.open(x) as image:
                image.load()
                x = image.copy()
        if isinstance(x, Image.Image):
            return preprocess(x, shape, get_model_spec(self.split.plan.model).preprocessing)
        array = np.asarray(x, dtype=np.float32)
        if array.shape == shape[1:]:
            array = array[None]
        if array.shape != shape:
            raise SplitnetError(f"an input of shape {array.shape} for a model that takes {shape}", "pass an image")
        return np.ascontiguousarray(array)

    def __call__(self, x: Input) -> np.ndarray:
        if self.deployment is None:
            raise SplitnetError("the split is not deployed", "use it inside `with splitnet.deploy(...) as boards:`")
        tensor = self.tensor(x)
        result = self.deployment.runner(tensor)
        self._seconds.append(result.total_s)
        if result.degraded:
            self._degraded += 1
        else:  # every exact answer is checked, as splitrun checks every frame
            self._worst = max(self._worst, float(np.max(np.abs(result.logits - self.split(tensor)))))
        return result.logits

    def report(self) -> DeployReport:
        deployment = self.deployment
        if deployment is None:
            raise SplitnetError("the split is not deployed", "use it inside `with splitnet.deploy(...) as boards:`")
        runner = deployment.runner
        boards = tuple(m.board if m is not None else "(dropped)" for m in deployment.modules())
        return DeployReport(
            model=self.split.plan.model,
            n=self.split.plan.n,
            inventory=self.inventory.description or self.inventory.source,
            boards=boards,
            policy=self.policy,
            frames=len(self._seconds),
            degraded=self._degraded,
            latency=LatencyStats.of(self._seconds),
            max_abs_diff=self._worst,
            faults=tuple(asdict(e) for e in runner.events),
            tuning=deployment.tuning,
            dead_boards=tuple(sorted(runner.dead)),
        )


def deploy(split: SplitModel, inventory=None, policy: str | None = None, wait_s: float = DEFAULT_WAIT_S) -> Deployed:
    """The split on ``inventory``'s boards (a YAML path or a shipped name; default two-pynq), as a context manager.

    The split's widths are fixed already, so its branches are placed round-robin in
    inventory order. ``policy``: the recovery policy (default: the inventory's, else spare).
    """
    return Deployed(split, inventory, policy, wait_s)
