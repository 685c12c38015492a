"""A named registry, the shape every splitnet extension point shares (models, partitioners).

A duplicate name warns and the later entry wins; an unknown name is a :class:`SplitnetError`
that lists the known names. A registry with a ``plugin_group`` also holds what installed
packages declare under that entry-point group, loaded the first time it is read
(:mod:`splitnet.framework.plugins`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Generic, TypeVar

from .errors import SplitnetError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(
        self,
        kind: str,
        plugin_group: str | None = None,
        from_plugin: Callable[[object], list[tuple[str, T]]] | None = None,
    ) -> None:
        self.kind = kind
        self.plugin_group = plugin_group
        self._from_plugin = from_plugin
        self._items: dict[str, T] = {}
        self._plugins_loaded = plugin_group is None
        self._plugin_error: SplitnetError | None = None
        self._plugin_names: set[str] = set()

    def add(self, name: str, item: T) -> T:
        if name in self._items:
            warnings.warn(f"{self.kind} {name!r} registered twice; the later one wins", stacklevel=3)
        self._items[name] = item
        return item

    def _add_plugin(self, name: str, item: T) -> T:
        existing = self._items.get(name)
        same_class = type(existing) is type(item) and type(item).__eq__ is object.__eq__
        if existing is not None and (existing == item or same_class):
            return existing  # the plugin's module already registered it on import
        self._plugin_names.add(name)
        return self.add(name, item)

    def load_plugins(self) -> None:
        """Load this registry's entry points, once; a broken plugin fails every later read too."""
        if self._plugin_error is not None:
            raise self._plugin_error
        if self._plugins_loaded:
            return
        self._plugins_loaded = True  # before loading: a plugin reading the registry must not recurse
        from .plugins import load_group

        try:
            load_group(self.plugin_group, self._from_plugin, self._add_plugin)
        except SplitnetError as exc:
            self._plugin_error = exc
            raise

    def reset_plugins(self) -> None:
        """Forget what plug-ins registered, so the next read loads the installed entry points again (tests)."""
        for name in self._plugin_names:
            self._items.pop(name, None)
        self._plugin_names.clear()
        self._plugins_loaded = self.plugin_group is None
        self._plugin_error = None

    def names(self) -> list[str]:
        self.load_plugins()
        return sorted(self._items)

    def registered_names(self) -> list[str]:
        """Names in the order they were registered (for lists whose order means something)."""
        self.load_plugins()
        return list(self._items)

    def items(self) -> list[tuple[str, T]]:
        return [(name, self._items[name]) for name in self.names()]

    def get(self, name: str) -> T:
        if name not in self._items:
            self.load_plugins()
        try:
            return self._items[name]
        except KeyError:
            raise SplitnetError(f"unknown {self.kind} {name!r}", f"use one of: {', '.join(self.names())}") from None
