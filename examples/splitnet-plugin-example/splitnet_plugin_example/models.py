"""A user's own HybridBlock CNN, registered with splitnet through the ``splitnet.models`` entry point.

``ScopedNet`` is an ordinary Gluon HybridBlock: two convolution stages, a two-path block
joined by concat, a residual add, global pooling, then a classifier Dense stack in its own
name scope (``classifier``). Nothing in it knows about splitnet; the entry point hands
splitnet a :class:`~splitnet.zoo.ModelSpec` saying how to build it and what input it takes.
"""

from __future__ import annotations

from mxnet.gluon import nn

from splitnet.zoo import ModelSpec

FAMILY = "scoped_cnn"  # claimed by the ``by_scope`` partitioner of this package


class ScopedNet(nn.HybridBlock):
    def __init__(self, classes: int = 10, width: int = 16, **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.stem = nn.HybridSequential(prefix="stem_")
            self.stem.add(nn.Conv2D(width, 3, padding=1), nn.BatchNorm(), nn.Activation("relu"), nn.MaxPool2D())
            self.wide = nn.Conv2D(width, 3, padding=1)
            self.narrow = nn.Conv2D(width, 1)
            self.mix = nn.HybridSequential(prefix="mix_")
            self.mix.add(nn.Conv2D(2 * width, 3, padding=1), nn.BatchNorm())
            self.pool = nn.GlobalAvgPool2D()
            self.flatten = nn.Flatten()
            self.classifier = nn.HybridSequential(prefix="classifier_")
            with self.classifier.name_scope():  # layer names get the prefix: scopednet0_classifier_dense0
                self.classifier.add(nn.Dense(32, activation="relu"), nn.Dense(classes))

    def hybrid_forward(self, F, x):  # noqa: N803 (Gluon's signature)
        x = self.stem(x)
        x = F.concat(self.wide(x), self.narrow(x), dim=1)
        x = F.relu(x + self.mix(x))
        return self.classifier(self.flatten(self.pool(x)))


def model_specs() -> list[ModelSpec]:
    """What the ``splitnet.models`` entry point returns: one spec per model name."""
    return [
        ModelSpec(
            name="scoped_net",
            family=FAMILY,
            input_shape=(1, 3, 32, 32),
            classes=10,
            factory=lambda classes: ScopedNet(classes=classes),
            description="example plug-in: a user HybridBlock CNN with a named classifier scope",
        )
    ]
