"""Gluon ResNet v1 models: the full ``resnet18_v1`` and a tiny one of the same family.

``resnet18_v1_thumb16`` is the full ResNet18 v1 with the small-image stem (``thumbnail``: a
3x3 stride-1 convolution, no max pooling) at 16x16 input and 10 classes: the model
``splitrun train`` trains on the built-in handwritten digits (8x8 images, upsampled), small
enough to train and run untuned on a 2-core machine.

The tiny model has the same graph shape (stem, four stages of BasicBlockV1, global pooling,
dense) with one block per stage, width 16 and a 32x32 input (``thumbnail`` stem), so tests
run the real code path in milliseconds.
"""

from __future__ import annotations

from mxnet.gluon.model_zoo import vision
from splitnet.zoo.registry import ModelSpec, register_model

FAMILY = "resnet_v1"


def _resnet18_v1(classes: int):
    return vision.resnet18_v1(classes=classes)


def _resnet18_v1_thumb16(classes: int):
    return vision.resnet18_v1(classes=classes, thumbnail=True)


def _resnet_tiny(classes: int):
    return vision.ResNetV1(vision.BasicBlockV1, [1, 1, 1, 1], [16, 16, 32, 64, 128], classes=classes, thumbnail=True)


register_model(
    ModelSpec(
        name="resnet18_v1",
        family=FAMILY,
        input_shape=(1, 3, 224, 224),
        classes=1000,
        factory=_resnet18_v1,
        description="Gluon model-zoo ResNet18 v1, ImageNet shape",
    )
)
register_model(
    ModelSpec(
        name="resnet_tiny",
        family=FAMILY,
        input_shape=(1, 3, 32, 32),
        classes=10,
        factory=_resnet_tiny,
        description="ResNet v1, one block per stage, width 16, 32x32 input (for tests)",
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
