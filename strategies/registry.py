"""The strategy registry: ``@register_strategy`` on a class with ``name``, ``summary``, ``run``.

Kept apart from :mod:`base` (the objects a strategy run passes around) so that the request
(:mod:`request`) can check a strategy name without importing what a run is made of.
"""

from __future__ import annotations

from ..framework.registry import Registry

DEFAULT_STRATEGY = "branch"

_STRATEGIES: Registry[type] = Registry("strategy")


def register_strategy(cls: type) -> type:
    """Class decorator: ``@register_strategy`` on a class with ``name``, ``summary``, ``run``."""
    _STRATEGIES.add(cls.name, cls)
    return cls


def list_strategies() -> list[str]:
    return _STRATEGIES.names()


def get_strategy(name: str):
    """A new instance of the strategy registered as ``name`` (unknown: lists the known ones)."""
    return _STRATEGIES.get(name)()
