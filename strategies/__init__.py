"""Orchestration: the one deploy path and the strategies that use it (branch, spatial, pipeline).

``request`` checks what the user asked for once; ``deploy`` places, builds with the matching
tuning database, uploads and wires the runner; ``branch_run`` is the branch strategy's
stages end to end (``splitrun run``); the other strategies register beside it by name.
"""

from . import branch as _branch  # noqa: F401  (registers it)
from . import pipeline_stages as _pipeline  # noqa: F401
from . import spatial as _spatial  # noqa: F401
from .base import Context, PieceReport, Strategy, StrategyOptions, StrategyResult
from .branch_run import BranchRun, run, run_branch
from .build import TunedBuilder
from .deploy import Deployment, deploy, place_branches, probe_boards
from .options import RunOptions
from .registry import DEFAULT_STRATEGY, get_strategy, list_strategies, register_strategy
from .request import SplitRequest, requests_for
from .runner import run_strategies, run_strategy

__all__ = [
    "DEFAULT_STRATEGY",
    "BranchRun",
    "Context",
    "Deployment",
    "PieceReport",
    "RunOptions",
    "SplitRequest",
    "Strategy",
    "StrategyOptions",
    "StrategyResult",
    "TunedBuilder",
    "deploy",
    "get_strategy",
    "list_strategies",
    "place_branches",
    "probe_boards",
    "register_strategy",
    "requests_for",
    "run",
    "run_branch",
    "run_strategies",
    "run_strategy",
]
