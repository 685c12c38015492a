"""Strategies: ways to spread one model over boards (branch, spatial, pipeline), registered by name."""

from splitnet.strategies import branch as _branch  # noqa: F401  (registers it)
from splitnet.strategies import pipeline_stages as _pipeline  # noqa: F401
from splitnet.strategies import spatial as _spatial  # noqa: F401
from splitnet.strategies.base import (
    DEFAULT_STRATEGY,
    Context,
    PieceReport,
    Strategy,
    StrategyOptions,
    StrategyResult,
    get_strategy,
    list_strategies,
    register_strategy,
)
from splitnet.strategies.runner import run_strategies, run_strategy

__all__ = [
    "DEFAULT_STRATEGY",
    "Context",
    "PieceReport",
    "Strategy",
    "StrategyOptions",
    "StrategyResult",
    "get_strategy",
    "list_strategies",
    "register_strategy",
    "run_strategies",
    "run_strategy",
]
