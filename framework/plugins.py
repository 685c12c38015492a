"""Third-party models and partitioners, found through Python entry points.

A package declares, in its ``pyproject.toml``::

    [project.entry-points."splitnet.models"]
    scoped_net = "my_package.models:model_specs"          # a ModelSpec, a list of them, or a function returning either

    [project.entry-points."splitnet.partitioners"]
    by_scope = "my_package.partitioner:ScopePartitioner"  # a partitioner class (or instance)

Once it is installed (``pip install my-package``), ``splitrun --model scoped_net`` works:
each group is loaded the first time its registry is read (lazily, once), so importing
splitnet stays cheap and a plugin never runs unless a model or partitioner is looked up. A
plugin that fails to import, or names something of the wrong kind, stops the lookup with one
line naming the distribution and the entry point (see docs/adding-a-partitioner.md).

This module knows entry points, not what they name: each registry passes the converter
that checks its own kind (:func:`splitnet.zoo.registry.model_items`,
:func:`splitnet.partitioners.registry.partitioner_items`).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points

from .errors import SplitnetError

Add = Callable[[str, object], object]


def _where(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    owner = f"distribution {dist.name} {dist.version}" if dist is not None else "an unknown distribution"
    return f"entry point {ep.name} = {ep.value} (group {ep.group}, {owner})"


def _uninstall_hint(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    name = dist.name if dist is not None else "the plugin's distribution"
    return f"fix the plugin, or remove it (pip uninstall {name})"


def load_group(group: str, convert: Callable[[object], list[tuple[str, object]]], add: Add) -> list[str]:
    """Load every entry point of ``group`` and register what each names; returns the names added."""
    added = []
    for ep in sorted(entry_points(group=group), key=lambda e: (e.name, e.value)):
        try:
            items = convert(ep.load())
        except SplitnetError as exc:
            raise SplitnetError(f"plugin {_where(ep)} failed: {exc.message}", exc.fix or _uninstall_hint(ep)) from None
        except Exception as exc:  # noqa: BLE001 (any failure inside a plugin is the plugin's)
            raise SplitnetError(
                f"plugin {_where(ep)} failed to load: {type(exc).__name__}: {exc}", _uninstall_hint(ep)
            ) from None
        for name, item in items:
            add(name, item)
            added.append(name)
    return added
