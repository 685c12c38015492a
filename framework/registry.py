"""A named registry, the shape every splitnet extension point shares (models, partitioners).

A duplicate name warns and the later entry wins; an unknown name is a :class:`SplitnetError`
that lists the known names.
"""

from __future__ import annotations

import warnings
from typing import Generic, TypeVar

from splitnet.framework.errors import SplitnetError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        if name in self._items:
            warnings.warn(f"{self.kind} {name!r} registered twice; the later one wins", stacklevel=3)
        self._items[name] = item
        return item

    def names(self) -> list[str]:
        return sorted(self._items)

    def items(self) -> list[tuple[str, T]]:
        return [(name, self._items[name]) for name in self.names()]

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise SplitnetError(f"unknown {self.kind} {name!r}", f"use one of: {', '.join(self.names())}") from None
