"""Recovery policies: what the runtime does when a board fails, registered by name.

A policy is a small object with a ``name``, a one-line ``summary`` (the ``--policy`` help is
made from them), what the runner needs to build for it (``copies`` of each branch, a coded
head) and two decisions: :meth:`RecoveryPolicy.lost_branch`, called when every copy of a
branch failed for a frame, and :meth:`RecoveryPolicy.pool_changed`, called when the boards
in use changed (one failed, or one came back), so that the policy can restore what it
promises before the next failure: ``replicate`` a second copy of each branch, ``coded`` a
parity block over the boards that are left. The mechanics it picks from (stop, drop the
branch, re-place it, add a copy, re-encode the head) are the executor's; the choice is the
policy's, so a new policy is one new class here and nothing in :mod:`executor` or
:mod:`recovery` branches on policy names.

``register_policy`` keeps the registration order, which is the order ``--policy`` lists them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..framework.errors import SplitnetError
from ..framework.registry import Registry

if TYPE_CHECKING:
    from .executor import DistributedSplit, FaultEvent

DEFAULT_POLICY = "spare"


class RecoveryPolicy:
    """The base every policy extends: by default a lost branch is re-placed (``spare``)."""

    name = ""
    summary = ""
    copies = 1  # boards each branch runs on at once; the first answer wins
    coded_head = False  # the merge head's dense layers run on the boards, coded with a parity block
    replaces = True  # a lost branch moves to another board, so the runner gets a recover function

    def lost_branch(
        self, runner: DistributedSplit, frame: int, branch: int, x: np.ndarray, events: list[FaultEvent], start: float
    ) -> tuple[np.ndarray, float]:
        """``branch``'s features for ``frame`` (and the seconds it took) after all its copies failed."""
        if runner.recover is None:  # nowhere to move it: answer without it
            return runner.drop_branch(branch, events, start)
        return runner.replace_branch(frame, branch, x, events, start)

    def pool_changed(self, runner: DistributedSplit) -> None:
        """A board failed or came back: repair what the policy keeps (in the background; by
        default nothing: a board that comes back is a spare for the next re-placement)."""


_POLICIES: Registry[RecoveryPolicy] = Registry("recovery policy")


def register_policy(cls: type[RecoveryPolicy]) -> type[RecoveryPolicy]:
    """Class decorator: registers one instance under ``cls.name``."""
    _POLICIES.add(cls.name, cls())
    return cls


def get_policy(name: str) -> RecoveryPolicy:
    return _POLICIES.get(name)


def list_policies() -> list[str]:
    """Registered names in registration order (spare first: the default)."""
    return _POLICIES.registered_names()


@register_policy
class Spare(RecoveryPolicy):
    name = "spare"
    summary = "re-place the branch on a spare, else a survivor"


@register_policy
class Replicate(RecoveryPolicy):
    name = "replicate"
    summary = "each branch on two boards, first answer wins; a lost copy is made again"
    copies = 2

    def pool_changed(self, runner):
        for branch in range(len(runner.branches)):
            runner.schedule_repair(f"copy of branch {branch}", lambda branch=branch: runner.add_copy(branch))


@register_policy
class Coded(RecoveryPolicy):
    name = "coded"
    summary = "the head's dense layers coded over the boards, re-encoded after a loss; branches re-placed"
    coded_head = True

    def pool_changed(self, runner):
        runner.schedule_repair("coded head", runner.recode_head)


@register_policy
class Degrade(RecoveryPolicy):
    name = "degrade"
    summary = "drop the branch, flag the answers"
    replaces = False

    def lost_branch(self, runner, frame, branch, x, events, start):
        return runner.drop_branch(branch, events, start)


@register_policy
class Stop(RecoveryPolicy):
    name = "none"
    summary = "stop"
    replaces = False

    def lost_branch(self, runner, frame, branch, x, events, start):
        boards = ", ".join(e.board for e in events) or "its board"
        raise SplitnetError(
            f"branch {branch} failed on {boards} at frame {frame} ({events[0].detail if events else 'no live board'})",
            "choose a recovery policy, e.g. --policy spare",
        )
