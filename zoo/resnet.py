"""Gluon ResNet v1 models: resnet18/34/50_v1 and tiny ones of the same family.

resnet18 and resnet34 stack BasicBlockV1 (two 3x3 convolutions); resnet50 stacks
BottleneckV1 (1x1 down, 3x3, 1x1 up to 4x the width, with a projection shortcut where the
width changes). The tiny models have the same graph shape (stem, four stages, global
pooling, dense) with one block per stage and a 32x32 input (``thumbnail`` stem), so tests
run the real code path in milliseconds.

``resnet18_v1_thumb16`` is the full ResNet18 v1 with the small-image stem (``thumbnail``: a
3x3 stride-1 convolution, no max pooling) at 16x16 input and 10 classes: the model
``splitrun train`` trains on the built-in handwritten digits (8x8 images, upsampled), small
enough to train and run untuned on a 2-core machine.

``resnet18_v1_thumb28_half`` is the same ResNet18 v1 graph (four stages of two basic blocks,
thumbnail stem) at half width (32-64-128-256 channels) and 28x28 input: the model trained on
Fashion-MNIST's 28x28 greyscale images at their own size. Half width is what lets the
reference and its N=2 and N=4 splits train on 60,000 images in about an hour on two cores
(a quarter of the full width's work per image), and keeps N=4 at 8 channels per branch in
the narrowest layer, so the default ``--multiple 8`` still splits it four ways. Its pixels
are normalised by Fashion-MNIST's own mean and standard deviation, the same on R, G and B
(greyscale images become RGB with three equal channels).
"""

from __future__ import annotations

from mxnet.gluon.model_zoo import vision

from ..framework.images import Preprocessing
from .registry import ModelSpec, register_model

FAMILY = "resnet_v1"
IMAGENET = (1, 3, 224, 224)
TINY_INPUT = (1, 3, 32, 32)
# mean and std of the 60,000 Fashion-MNIST training images' pixels / 255 (0.28604 and 0.35302,
# numpy over train-images-idx3-ubyte.gz); the test images are not used for it
FASHION_MNIST = Preprocessing("Fashion-MNIST mean/std", 255.0, (0.2860,) * 3, (0.3530,) * 3)


def _resnet18_v1(classes: int):
    return vision.resnet18_v1(classes=classes)


def _resnet34_v1(classes: int):
    return vision.resnet34_v1(classes=classes)


def _resnet50_v1(classes: int):
    return vision.resnet50_v1(classes=classes)


def _resnet18_v1_thumb16(classes: int):
    return vision.resnet18_v1(classes=classes, thumbnail=True)


def _resnet18_v1_thumb28_half(classes: int):
    return vision.ResNetV1(vision.BasicBlockV1, [2, 2, 2, 2], [32, 32, 64, 128, 256], classes=classes, thumbnail=True)


def _resnet_tiny(classes: int):
    return vision.ResNetV1(vision.BasicBlockV1, [1, 1, 1, 1], [16, 16, 32, 64, 128], classes=classes, thumbnail=True)


def _resnet_bottleneck_tiny(classes: int):
    # BottleneckV1(c) narrows to c // 4 inside, so the narrowest layer has 16 channels; every stage
    # widens, as in resnet50, so every stage's first block has a projection shortcut
    return vision.ResNetV1(vision.BottleneckV1, [1, 1, 1, 1], [16, 64, 128, 256, 512], classes=classes, thumbnail=True)


for _name, _factory, _text in [
    ("resnet18_v1", _resnet18_v1, "Gluon model-zoo ResNet18 v1 (basic blocks), ImageNet shape"),
    ("resnet34_v1", _resnet34_v1, "Gluon model-zoo ResNet34 v1 (basic blocks), ImageNet shape"),
    ("resnet50_v1", _resnet50_v1, "Gluon model-zoo ResNet50 v1 (bottleneck blocks), ImageNet shape"),
]:
    register_model(
        ModelSpec(name=_name, family=FAMILY, input_shape=IMAGENET, classes=1000, factory=_factory, description=_text)
    )

register_model(
    ModelSpec(
        name="resnet_tiny",
        family=FAMILY,
        input_shape=TINY_INPUT,
        classes=10,
        factory=_resnet_tiny,
        description="ResNet v1, one block per stage, width 16, 32x32 input (for tests)",
    )
)
register_model(
    ModelSpec(
        name="resnet_bottleneck_tiny",
        family=FAMILY,
        input_shape=TINY_INPUT,
        classes=10,
        factory=_resnet_bottleneck_tiny,
        description="ResNet v1 with bottleneck blocks (resnet50's), one per stage, 32x32 input (for tests)",
    )
)
register_model(
    ModelSpec(
        name="resnet18_v1_thumb16",
        family=FAMILY,
        input_shape=(1, 3, 16, 16),
        classes=10,
        factory=_resnet18_v1_thumb16,
        description="ResNet18 v1, small-image stem, 16x16 input, 10 classes (trained on the built-in digits)",
    )
)
register_model(
    ModelSpec(
        name="resnet18_v1_thumb28_half",
        family=FAMILY,
        input_shape=(1, 3, 28, 28),
        classes=10,
        factory=_resnet18_v1_thumb28_half,
        description="ResNet18 v1 at half width (32-256 channels), small-image stem, 28x28 input, 10 classes "
        "(trained on Fashion-MNIST)",
        preprocessing=FASHION_MNIST,
    )
)
