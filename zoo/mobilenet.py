"""MobileNet v1: depthwise 3x3 plus pointwise 1x1 convolutions, global pooling, dense.

A depthwise convolution has one group per channel, so a branch keeps the groups of the
channels it owns (groups follow channels) and its cost grows linearly with the branch's
share; the pointwise convolutions between them split like any other.

``mobilenet_tiny`` is Gluon's own MobileNet class at width multiplier 0.5 (16 to 512
channels) on a 32x32 input, for tests.
"""

from __future__ import annotations

from mxnet.gluon.model_zoo import vision

from .registry import ModelSpec, register_model

FAMILY = "mobilenet"


def _mobilenet1_0(classes: int):
    return vision.mobilenet1_0(classes=classes)


def _mobilenet_tiny(classes: int):
    return vision.MobileNet(multiplier=0.5, classes=classes)


register_model(
    ModelSpec(
        name="mobilenet1.0",
        family=FAMILY,
        input_shape=(1, 3, 224, 224),
        classes=1000,
        factory=_mobilenet1_0,
        description="Gluon model-zoo MobileNet v1, width 1.0, ImageNet shape",
    )
)
register_model(
    ModelSpec(
        name="mobilenet_tiny",
        family=FAMILY,
        input_shape=(1, 3, 32, 32),
        classes=10,
        factory=_mobilenet_tiny,
        description="MobileNet v1 at width multiplier 0.5, 32x32 input (for tests)",
    )
)
