"""Partitioners register by name (``@register_partitioner``) and claim model families.

Installed packages add partitioners through the ``splitnet.partitioners`` entry points
(:mod:`splitnet.framework.plugins`).
"""

from __future__ import annotations

from types import ModuleType
from typing import Protocol

from ..framework.errors import SplitnetError
from ..framework.plan import SplitPlan
from ..framework.registry import Registry
from .graph import ModelGraph

PARTITIONERS_GROUP = "splitnet.partitioners"


class Partitioner(Protocol):
    """The rule half of splitting: read the graph, decide body, head and shares."""

    name: str
    families: tuple[str, ...]

    def plan(
        self, graph: ModelGraph, *, model: str, n: int, widths: tuple[float, ...] | None, multiple: int
    ) -> SplitPlan: ...


def partitioner_items(loaded: object) -> list[tuple[str, object]]:
    """(name, partitioner) pairs from what a ``splitnet.partitioners`` entry point names."""
    if isinstance(loaded, ModuleType):
        return []
    instance = loaded() if isinstance(loaded, type) else loaded
    missing = [attr for attr in ("name", "families", "plan") if not hasattr(instance, attr)]
    if missing:
        raise TypeError(f"expected a partitioner class with name, families and plan; {loaded!r:.80} has no {missing}")
    return [(instance.name, instance)]


_PARTITIONERS: Registry[Partitioner] = Registry(
    "partitioner", plugin_group=PARTITIONERS_GROUP, from_plugin=partitioner_items
)


def register_partitioner(cls: type) -> type:
    """Class decorator: registers one instance under ``cls.name``."""
    instance = cls()
    _PARTITIONERS.add(instance.name, instance)
    return cls


def list_partitioners() -> list[str]:
    return _PARTITIONERS.names()


def get_partitioner(name: str) -> Partitioner:
    return _PARTITIONERS.get(name)


def partitioner_for(family: str) -> Partitioner:
    """The partitioner that claims a model family."""
    for _, partitioner in _PARTITIONERS.items():
        if family in partitioner.families:
            return partitioner
    raise SplitnetError(
        f"no partitioner handles model family {family!r}",
        f"register one with @register_partitioner (known: {', '.join(list_partitioners())})",
    )
