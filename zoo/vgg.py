"""VGG: plain 3x3 convolution stacks with max pooling, then a large dense head.

VGG has no global pooling: the body ends at the last max pooling (512 x 7 x 7 for ImageNet
input) and the first dense layer flattens it, so each branch sends its channels' 7 x 7 maps
(the generic ``cnn`` partitioner handles that). The head (two 4096-wide dense layers and the
classifier, 120M of vgg16's 138M weights) stays whole; the ``coded`` recovery policy spreads
its dense layers over the boards (see runtime/coded.py).

``vgg_tiny`` has the same graph shape (conv + relu stages, max pooling, dense + relu +
dropout twice, classifier) with three stages, width 16 and a 64-wide head, for tests.
"""

from __future__ import annotations

from mxnet.gluon import nn
from mxnet.gluon.model_zoo import vision

from .registry import ModelSpec, register_model

FAMILY = "vgg"


class TinyVGG(nn.HybridBlock):
    """Gluon's VGG layout at test size: ``vision.VGG`` fixes its dense layers at 4096."""

    def __init__(self, layers: list[int], filters: list[int], hidden: int, classes: int, **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            for count, width in zip(layers, filters, strict=True):
                for _ in range(count):
                    self.features.add(nn.Conv2D(width, kernel_size=3, padding=1), nn.Activation("relu"))
                self.features.add(nn.MaxPool2D(strides=2))
            for _ in range(2):
                self.features.add(nn.Dense(hidden, activation="relu"), nn.Dropout(rate=0.5))
            self.output = nn.Dense(classes)

    def hybrid_forward(self, F, x):  # noqa: N803 (Gluon's signature)
        return self.output(self.features(x))


def _vgg11(classes: int):
    return vision.vgg11(classes=classes)


def _vgg16(classes: int):
    return vision.vgg16(classes=classes)


def _vgg_tiny(classes: int):
    return TinyVGG([1, 1, 2], [16, 32, 64], hidden=64, classes=classes)


register_model(
    ModelSpec(
        name="vgg11",
        family=FAMILY,
        input_shape=(1, 3, 224, 224),
        classes=1000,
        factory=_vgg11,
        description="Gluon model-zoo VGG11 (no batch norm), ImageNet shape; 4096-wide dense head",
    )
)
register_model(
    ModelSpec(
        name="vgg16",
        family=FAMILY,
        input_shape=(1, 3, 224, 224),
        classes=1000,
        factory=_vgg16,
        description="Gluon model-zoo VGG16 (no batch norm), ImageNet shape; 4096-wide dense head",
    )
)
register_model(
    ModelSpec(
        name="vgg_tiny",
        family=FAMILY,
        input_shape=(1, 3, 32, 32),
        classes=10,
        factory=_vgg_tiny,
        description="VGG layout, three stages, width 16, 64-wide head, 32x32 input (for tests)",
    )
)
