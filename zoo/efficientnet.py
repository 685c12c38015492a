"""EfficientNet-Lite0 with its published ImageNet weights, and a tiny variant for tests.

EfficientNet-Lite is EfficientNet made for integer accelerators: no squeeze-excite, ReLU6
instead of swish, and a fixed stem (32) and head (1280). Its body is MobileNet v2's inverted
residual (MBConv) block: a 1x1 expand convolution (skipped when the expansion is 1), a
depthwise kxk convolution, a 1x1 projection without activation, and a residual add when the
stride is 1 and the width does not change. Every op is one the generic ``cnn`` partitioner
has a channel rule for (ReLU6 exports as ``clip``), so it splits like MobileNet: depthwise
groups follow channels, and the residual adds join layers of equal width, which the
allocation always shares out alike.

The layers are created in the order the PyTorch checkpoint lists its tensors (convolutions
have no bias; batch norm gamma, beta, running mean, running variance), so the published
weights map one-to-one onto ``collect_params()`` (see :mod:`splitnet.zoo.imagenet_weights`).

``efficientnet_lite_tiny`` has the same kind of blocks (kernels 3 and 5, expansion 6,
residual adds) at 32 to 128 channels (head 256) on a 32x32 input, seeded init, for fast tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from mxnet.gluon import HybridBlock, nn

from ..framework.images import Preprocessing
from .registry import ModelSpec, register_model

FAMILY = "cnn"
BN_EPSILON = 1e-3
# EfficientNet-Lite's own input scaling: (x - 127) / 128 on 0..255 RGB, the image resized whole
# to 224x224 (bilinear); ImageNet mean/std or a centre crop score lower on the labelled photos
LITE_PREPROCESSING = Preprocessing("EfficientNet-Lite (x-127)/128", 1.0, (127.0,) * 3, (128.0,) * 3, crop=False)


@dataclass(frozen=True)
class Stage:
    """One row of the architecture table: ``repeats`` MBConv blocks (the first one strided)."""

    kernel: int
    stride: int
    expand: int
    channels_in: int
    channels_out: int
    repeats: int


# (kernel, stride, expand, in, out, repeats), from the EfficientNet-Lite0 definition
LITE0_STAGES = (
    Stage(3, 1, 1, 32, 16, 1),
    Stage(3, 2, 6, 16, 24, 2),
    Stage(5, 2, 6, 24, 40, 2),
    Stage(3, 2, 6, 40, 80, 3),
    Stage(5, 1, 6, 80, 112, 3),
    Stage(5, 2, 6, 112, 192, 4),
    Stage(3, 1, 6, 192, 320, 1),
)
TINY_STAGES = (  # wide enough that the depthwise convolutions (whose cost N does not divide) stay a minority
    Stage(3, 1, 1, 32, 32, 1),
    Stage(3, 2, 6, 32, 64, 2),
    Stage(5, 2, 6, 64, 64, 1),
    Stage(3, 2, 6, 64, 96, 1),
    Stage(5, 1, 6, 96, 96, 2),
    Stage(3, 1, 6, 96, 128, 1),
)


class ReLU6(HybridBlock):
    """min(max(x, 0), 6): exported as one ``clip`` op."""

    def hybrid_forward(self, F, x):
        return F.clip(x, 0.0, 6.0)


def _conv_bn(out: nn.HybridSequential, channels: int, kernel: int, stride: int, groups: int, act: bool) -> None:
    out.add(
        nn.Conv2D(channels, kernel, strides=stride, padding=kernel // 2, groups=groups, use_bias=False),
        nn.BatchNorm(epsilon=BN_EPSILON),
    )
    if act:
        out.add(ReLU6())


class MBConv(HybridBlock):
    """Inverted residual: [1x1 expand, BN, ReLU6], depthwise kxk, BN, ReLU6, 1x1 project, BN, [+x]."""

    def __init__(self, kernel: int, stride: int, expand: int, channels_in: int, channels_out: int, **kwargs):
        super().__init__(**kwargs)
        self.residual = stride == 1 and channels_in == channels_out
        hidden = channels_in * expand
        with self.name_scope():
            self.body = nn.HybridSequential()
            if expand != 1:
                _conv_bn(self.body, hidden, 1, 1, 1, act=True)
            _conv_bn(self.body, hidden, kernel, stride, hidden, act=True)
            _conv_bn(self.body, channels_out, 1, 1, 1, act=False)

    def hybrid_forward(self, F, x):
        out = self.body(x)
        return out + x if self.residual else out


class EfficientNetLite(HybridBlock):
    """Stem 3x3 s2, the MBConv stages, 1x1 head conv, global average pooling, dense."""

    def __init__(self, stages: tuple[Stage, ...], stem: int, head: int, classes: int, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential()
            _conv_bn(self.features, stem, 3, 2, 1, act=True)
            for stage in stages:
                for index in range(stage.repeats):
                    first = index == 0
                    self.features.add(
                        MBConv(
                            stage.kernel,
                            stage.stride if first else 1,
                            stage.expand,
                            stage.channels_in if first else stage.channels_out,
                            stage.channels_out,
                        )
                    )
            _conv_bn(self.features, head, 1, 1, 1, act=True)
            self.features.add(nn.GlobalAvgPool2D())
            self.output = nn.Dense(classes)

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


def _lite0(classes: int) -> EfficientNetLite:
    return EfficientNetLite(LITE0_STAGES, stem=32, head=1280, classes=classes)


def _lite0_weights(classes: int) -> tuple[object, str]:
    from .imagenet_weights import published_weights

    weights = published_weights("efficientnet_lite0", _lite0, (1, 3, 224, 224), classes)
    return weights.path, weights.provenance


def _lite_tiny(classes: int) -> EfficientNetLite:
    return EfficientNetLite(TINY_STAGES, stem=32, head=256, classes=classes)


register_model(
    ModelSpec(
        name="efficientnet_lite0",
        family=FAMILY,
        input_shape=(1, 3, 224, 224),
        classes=1000,
        factory=_lite0,
        description="EfficientNet-Lite0 (MBConv, ReLU6), 224x224, ImageNet weights (pip extra [imagenet])",
        preprocessing=LITE_PREPROCESSING,
        published_weights=_lite0_weights,
    )
)
register_model(
    ModelSpec(
        name="efficientnet_lite_tiny",
        family=FAMILY,
        input_shape=(1, 3, 32, 32),
        classes=10,
        factory=_lite_tiny,
        description="EfficientNet-Lite blocks at 32-128 channels, 32x32 input (for tests)",
        preprocessing=LITE_PREPROCESSING,
    )
)
