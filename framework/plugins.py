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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType

from splitnet.framework.errors import SplitnetError

MODELS_GROUP = "splitnet.models"
PARTITIONERS_GROUP = "splitnet.partitioners"

Add = Callable[[str, object], object]


def _where(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    owner = f"distribution {dist.name} {dist.version}" if dist is not None else "an unknown distribution"
    return f"entry point {ep.name} = {ep.value} (group {ep.group}, {owner})"


def _uninstall_hint(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    name = dist.name if dist is not None else "the plugin's distribution"
    return f"fix the plugin, or remove it (pip uninstall {name})"


def model_items(loaded: object) -> list[tuple[str, object]]:
    """(name, ModelSpec) pairs from what a ``splitnet.models`` entry point names."""
    from splitnet.zoo.registry import ModelSpec

    if isinstance(loaded, ModuleType):  # a module that registers its models on import
        return []
    value = loaded() if callable(loaded) and not isinstance(loaded, ModelSpec) else loaded
    specs = [value] if isinstance(value, ModelSpec) else list(value) if isinstance(value, Iterable) else [value]
    if not specs or not all(isinstance(spec, ModelSpec) for spec in specs):
        raise TypeError(f"expected a ModelSpec, a list of them or a function returning either, got {value!r:.80}")
    return [(spec.name, spec) for spec in specs]


def partitioner_items(loaded: object) -> list[tuple[str, object]]:
    """(name, partitioner) pairs from what a ``splitnet.partitioners`` entry point names."""
    if isinstance(loaded, ModuleType):
        return []
    instance = loaded() if isinstance(loaded, type) else loaded
    missing = [attr for attr in ("name", "families", "plan") if not hasattr(instance, attr)]
    if missing:
        raise TypeError(f"expected a partitioner class with name, families and plan; {loaded!r:.80} has no {missing}")
    return [(instance.name, instance)]


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
