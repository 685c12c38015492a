"""Seeded chaos: ``--chaos random:SEED`` draws kills and stalls over the whole run from a seed.

For a soak (``benchmarks/soak.py``): the frames at which something happens, what happens and
for how long are drawn from ``random.Random(seed)``; the board is drawn, from the same
generator, among the *busy* boards (those holding a branch copy or a coded head block) at
that frame, and only when a *spare* is available (a live board holding no branch copy) to
take over. So the same seed makes the same sequence of draws; which board that names
depends on where the recoveries put the branches so far.

* a kill is ``restart``: the server is SIGKILLed and started again ``1-3 s`` later under
  the same key, so the pool refills and the board comes back through the tracker;
* a stall is ``1.5-3 s`` of SIGSTOP, longer than the shortest call timeout (1 s), so it is
  noticed as a timeout; the board comes back on its old session when it resumes.

A board that was hit is left alone until it is back and a few seconds have passed. When no
board qualifies, the draw is skipped and said so (``applied``).
"""

from __future__ import annotations

import random
import time

from .inventory import Inventory

FIRST_FRAME = 10  # after the first frames of the verify pass
GAP_FRAMES = (30, 90)  # frames between two draws
RESTART_S = (1.0, 3.0)
STALL_S = (1.5, 3.0)
SETTLE_S = 3.0  # a board hit is not hit again until this long after it should be back


class RandomDraw:
    def __init__(self, seed: int, inventory: Inventory, chaos) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.chaos = chaos  # the :class:`~.chaos.Chaos` that applies what is drawn
        self.local = [b.name for b in inventory.boards if b.local]
        self.next_frame = FIRST_FRAME + self.rng.randint(0, GAP_FRAMES[1] - GAP_FRAMES[0])
        self._left_alone_until: dict[str, float] = {}

    def _eligible(self, runner) -> tuple[list[str], list[str]]:
        """(busy boards that may be hit, spares) at this frame."""
        now = time.monotonic()
        with runner._lock:
            dead = set(runner.dead)
            holding = {m.board for replicas in runner.branches for m in replicas if m.board not in dead}
            blocks = set(runner.coded_head.boards) if runner.coded_head is not None else set()
        usable = [n for n in self.local if n not in dead and self._left_alone_until.get(n, 0.0) <= now]
        busy = [n for n in usable if n in holding or n in blocks]
        spares = [n for n in usable if n not in holding]
        return busy, spares

    def before_frame(self, frame: int, runner) -> None:
        if frame < self.next_frame or runner is None:
            return
        self.next_frame = frame + self.rng.randint(*GAP_FRAMES)
        action = self.rng.choice(("restart", "stall"))
        seconds = round(self.rng.uniform(*(RESTART_S if action == "restart" else STALL_S)), 1)
        pick = self.rng.random()
        busy, spares = self._eligible(runner)
        candidates = [n for n in busy if [s for s in spares if s != n]]
        if not candidates:
            self.chaos.applied.append(f"random:{self.seed}: {action} drawn at frame {frame}, skipped: no spare free")
            return
        name = candidates[int(pick * len(candidates))]
        self._left_alone_until[name] = time.monotonic() + seconds + SETTLE_S
        self.chaos.apply(action, name, seconds, runner, lambda n: f"random:{self.seed}: {action} {n} at frame {frame}")
        self.chaos.applied[-1] += f" for {seconds:g} s"
