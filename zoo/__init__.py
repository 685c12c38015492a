"""Reference models by name (``get_model("resnet18_v1", classes=1000)``)."""

from . import efficientnet as _efficientnet  # noqa: F401  (registers EfficientNet-Lite0 and a tiny one)
from . import mobilenet as _mobilenet  # noqa: F401  (registers the MobileNet v1 family)
from . import resnet as _resnet  # noqa: F401  (registers the ResNet v1 family)
from . import vgg as _vgg  # noqa: F401  (registers the VGG family)
from .params import (
    Reference,
    find_entry,
    get_model,
    load_reference,
    params_dir,
    sha256_of,
    verified_file,
)
from .registry import ModelSpec, get_model_spec, list_models, register_model

__all__ = [
    "ModelSpec",
    "Reference",
    "find_entry",
    "get_model",
    "get_model_spec",
    "list_models",
    "load_reference",
    "params_dir",
    "register_model",
    "sha256_of",
    "verified_file",
]
