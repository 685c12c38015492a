"""splitnet from Python: split a trained network, deploy it on two boards, classify images.

    python examples/python_api.py [MODEL] [IMAGES]

What a PYNQ owner would type into a Jupyter cell on the host that drives the boards. The
default model, ``resnet18_v1_thumb16``, ships trained on scikit-learn's handwritten digits
(with fine-tuned N=2 weights), so the example classifies the first IMAGES digits of the set
(default 8; most were in its training split: this shows the mechanics, ``splitrun accuracy``
measures held-out accuracy) on two PYNQ boards, emulated by local RPC servers when none are
registered, and prints the label beside the boards' answer. Every answer is checked against
the same split run in-process; the exit status is 1 if one differs by more than 1e-4.
"""

from __future__ import annotations

import sys

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

import splitnet


def main(model_name: str = "resnet18_v1_thumb16", count: int = 8) -> int:
    model = splitnet.load_model(model_name)
    print(f"{model_name}: weights {model.source}")

    split = splitnet.split(model, branches=2)
    for branch in split.plan.branches:
        print(
            f"branch {branch.index}: share {branch.share:.2f}, {branch.params / 1e6:.2f} M weights, "
            f"{branch.flops / 1e9:.3f} GFLOPs, {branch.feature_size} features to the head"
        )

    digits = load_digits()
    images = [Image.fromarray((d * 255 / 16).astype(np.uint8), mode="L") for d in digits.images[:count]]
    with splitnet.deploy(split, inventory="two-pynq") as boards:
        for image, label in zip(images, digits.target[:count], strict=True):
            logits = boards(image)  # a PIL image, an image file, or an array of the model's input shape
            print(f"label {label}: boards say {int(logits.argmax())}")
        report = boards.report()
    print(report)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2], *(int(a) for a in sys.argv[2:3])))
