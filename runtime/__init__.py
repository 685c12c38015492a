"""Boards, placement and distributed execution over TVM RPC."""

from splitnet.runtime.board_session import BoardSession, RemoteModule, acquire, request_session
from splitnet.runtime.executor import DistributedSplit, FrameResult
from splitnet.runtime.inventory import DEFAULT_KEY, Board, Inventory, default_inventory
from splitnet.runtime.local_cluster import LocalCluster, free_port
from splitnet.runtime.placement import Placement, check_placement, place_round_robin, validated

__all__ = [
    "DEFAULT_KEY",
    "Board",
    "BoardSession",
    "DistributedSplit",
    "FrameResult",
    "Inventory",
    "LocalCluster",
    "Placement",
    "RemoteModule",
    "acquire",
    "check_placement",
    "default_inventory",
    "free_port",
    "place_round_robin",
    "request_session",
    "validated",
]
