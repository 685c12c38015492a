"""Build a split's parts with the tuning database that matches each build, and say which.

One :class:`TunedBuilder` per split is the ``build(part, board)`` function of the deploy
path: the first builds, the replicas, and the branches the runtime re-places after a failure
all come through it, so every build of a part is tuned the same way. The lookup itself is
the tune stage's (:func:`splitnet.tuning.find_database`); compile applies the records.
"""

from __future__ import annotations

from ..framework.artifact import CompiledArtifact
from ..framework.compile import compile_part
from ..framework.split_model import Part, SplitModel
from ..framework.targets import host_target
from ..runtime.inventory import Board
from ..tuning import find_database, key_for, untuned_note


class TunedBuilder:
    """``builder(part, board)`` -> the part's artifact for that board, tuned when a database matches."""

    def __init__(self, split: SplitModel) -> None:
        self.split = split
        self._notes: dict[str, list[str]] = {}  # note -> part names it applies to, in build order

    def for_target(self, part: Part, target: dict, fmt: str = "so") -> CompiledArtifact:
        key = key_for(self.split, target)
        match = find_database(key)
        if match is None:
            artifact = compile_part(part, target, fmt)
        else:  # built in the layout its database was tuned in
            artifact = compile_part(part, target, fmt, database=match.path, layout=match.key.layout)
        names = self._notes.setdefault(match.note if match else untuned_note(key), [])
        if part.name not in names:
            names.append(part.name)
        return artifact

    def __call__(self, part: Part, board: Board) -> CompiledArtifact:
        return self.for_target(part, board.build_target, board.build_format)

    def head(self) -> CompiledArtifact:
        """The merge head, built for this host (it runs in-process)."""
        return self.for_target(self.split.head, host_target(), "so")

    @property
    def notes(self) -> tuple[str, ...]:
        """One line per distinct tuning outcome: ``branch0, branch1, head: tuned: database ...``."""
        return tuple(f"{', '.join(names)}: {note}" for note, names in self._notes.items())
