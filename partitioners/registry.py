"""Partitioners register by name (``@register_partitioner``) and claim model families."""

from __future__ import annotations

import warnings
from typing import Protocol

from splitnet.framework.errors import SplitnetError
from splitnet.partitioners.graph import ModelGraph
from splitnet.partitioners.plan import SplitPlan


class Partitioner(Protocol):
    """The rule half of splitting: read the graph, decide body, head and shares."""

    name: str
    families: tuple[str, ...]

    def plan(
        self, graph: ModelGraph, *, model: str, n: int, widths: tuple[float, ...] | None, multiple: int
    ) -> SplitPlan: ...


_PARTITIONERS: dict[str, Partitioner] = {}


def register_partitioner(cls: type) -> type:
    """Class decorator: registers one instance under ``cls.name``."""
    instance = cls()
    if instance.name in _PARTITIONERS:
        warnings.warn(f"partitioner {instance.name!r} registered twice; the later one wins", stacklevel=2)
    _PARTITIONERS[instance.name] = instance
    return cls


def list_partitioners() -> list[str]:
    return sorted(_PARTITIONERS)


def get_partitioner(name: str) -> Partitioner:
    try:
        return _PARTITIONERS[name]
    except KeyError:
        raise SplitnetError(f"unknown partitioner {name!r}", f"use one of: {', '.join(list_partitioners())}") from None


def partitioner_for(family: str) -> Partitioner:
    """The partitioner that claims a model family."""
    for name in list_partitioners():
        if family in _PARTITIONERS[name].families:
            return _PARTITIONERS[name]
    raise SplitnetError(
        f"no partitioner handles model family {family!r}",
        f"register one with @register_partitioner (known: {', '.join(list_partitioners())})",
    )
