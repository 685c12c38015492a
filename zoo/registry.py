"""The model registry: a model is a short factory registered by name (as in timm).

Registration happens when the family module is imported (``splitnet.zoo`` imports them all).
A duplicate name warns and replaces; an unknown name raises with the list of known ones.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

from splitnet.framework.errors import SplitnetError


@dataclass(frozen=True)
class ModelSpec:
    """What the rest of splitnet needs to know about a registered model.

    ``family`` lets partitioners claim models (``resnet_v1``); ``input_shape`` is NCHW for one
    frame; ``factory(classes)`` returns an *uninitialised* Gluon HybridBlock.
    """

    name: str
    family: str
    input_shape: tuple[int, int, int, int]
    classes: int
    factory: Callable[[int], object]
    description: str = ""


_MODELS: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    if spec.name in _MODELS:
        warnings.warn(f"model {spec.name!r} registered twice; the later one wins", stacklevel=2)
    _MODELS[spec.name] = spec
    return spec


def list_models() -> list[str]:
    return sorted(_MODELS)


def get_model_spec(name: str) -> ModelSpec:
    try:
        return _MODELS[name]
    except KeyError:
        raise SplitnetError(f"unknown model {name!r}", f"use one of: {', '.join(list_models())}") from None
