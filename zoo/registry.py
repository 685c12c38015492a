"""The model registry: a model is a short factory registered by name (as in timm).

Registration happens when the family module is imported (``splitnet.zoo`` imports them all);
installed packages add models through the ``splitnet.models`` entry points
(:mod:`splitnet.framework.plugins`).
A duplicate name warns and replaces; an unknown name raises with the list of known ones
(see :class:`splitnet.framework.registry.Registry`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType

from ..framework.images import IMAGENET, Preprocessing
from ..framework.registry import Registry

MODELS_GROUP = "splitnet.models"


@dataclass(frozen=True)
class ModelSpec:
    """What the rest of splitnet needs to know about a registered model.

    ``family`` lets partitioners claim models (``resnet_v1``); ``input_shape`` is NCHW for one
    frame; ``factory(classes)`` returns an *uninitialised* Gluon HybridBlock; ``preprocessing``
    is how its input pixels are normalised (frames, data sets and the Python API apply it);
    ``published_weights(classes)``, when set, returns ``(params file, provenance line)`` of
    weights someone published (ImageNet's, say), used when ``params/`` has none.
    """

    name: str
    family: str
    input_shape: tuple[int, int, int, int]
    classes: int
    factory: Callable[[int], object]
    description: str = ""
    preprocessing: Preprocessing = IMAGENET
    published_weights: Callable[[int], tuple[object, str]] | None = None


def model_items(loaded: object) -> list[tuple[str, object]]:
    """(name, ModelSpec) pairs from what a ``splitnet.models`` entry point names."""
    if isinstance(loaded, ModuleType):  # a module that registers its models on import
        return []
    value = loaded() if callable(loaded) and not isinstance(loaded, ModelSpec) else loaded
    specs = [value] if isinstance(value, ModelSpec) else list(value) if isinstance(value, Iterable) else [value]
    if not specs or not all(isinstance(spec, ModelSpec) for spec in specs):
        raise TypeError(f"expected a ModelSpec, a list of them or a function returning either, got {value!r:.80}")
    return [(spec.name, spec) for spec in specs]


_MODELS: Registry[ModelSpec] = Registry("model", plugin_group=MODELS_GROUP, from_plugin=model_items)


def register_model(spec: ModelSpec) -> ModelSpec:
    return _MODELS.add(spec.name, spec)


def list_models() -> list[str]:
    return _MODELS.names()


def get_model_spec(name: str) -> ModelSpec:
    return _MODELS.get(name)
