"""Boards and the tracker they register with, as frozen dataclasses.

The inventory issue loads these from YAML; the end-to-end path builds the default: N
emulated PYNQ boards (key ``pynq``) started locally by splitrun, running code built for
this host's CPU, since nothing here can execute the boards' ARM code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from splitnet.framework.targets import host_target

DEFAULT_KEY = "pynq"
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Board:
    """One RPC server: a name, the tracker key it registers under, and its TVM target."""

    name: str
    key: str
    target: dict
    cores: int = 1
    local: bool = False
    export_format: str = "so"
    emulates: str = ""


@dataclass(frozen=True)
class Inventory:
    tracker_host: str
    tracker_port: int | None
    tracker_local: bool
    boards: tuple[Board, ...] = field(default_factory=tuple)
    description: str = ""

    def board(self, name: str) -> Board:
        for board in self.boards:
            if board.name == name:
                return board
        raise KeyError(name)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(b.key for b in self.boards))


def default_inventory(n_boards: int = 2) -> Inventory:
    """The embedded default: ``n_boards`` PYNQ-Z1 boards emulated by local RPC servers."""
    boards = tuple(
        Board(
            name=f"pynq{i}",
            key=DEFAULT_KEY,
            target=host_target(cores=1),
            cores=1,
            local=True,
            emulates="PYNQ-Z1 (emulated on this host's CPU, one core)",
        )
        for i in range(n_boards)
    )
    return Inventory(
        tracker_host=LOOPBACK,
        tracker_port=None,
        tracker_local=True,
        boards=boards,
        description=f"{n_boards} PYNQ boards (key {DEFAULT_KEY!r}), emulated locally",
    )
