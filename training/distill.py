"""The fine-tuning loss: label cross-entropy plus distillation from the unsplit reference.

Knowledge distillation (Hinton et al., 2015): the split model (student) matches the
reference's (teacher's) softened class probabilities at temperature ``T`` as well as the
labels. The soft targets carry how the reference ranks the wrong classes too, which is
what a sliced network has lost. The KL term is scaled by ``T**2`` so its gradients keep
the same size whatever the temperature.

    loss = (1 - alpha) * CE(student, label) + alpha * T**2 * KL(softmax(teacher / T) || softmax(student / T))
"""

from __future__ import annotations

from dataclasses import dataclass

import mxnet as mx

DEFAULT_ALPHA = 0.5
DEFAULT_TEMPERATURE = 4.0


@dataclass(frozen=True)
class DistillLoss:
    alpha: float = DEFAULT_ALPHA
    temperature: float = DEFAULT_TEMPERATURE

    def kl(self, student: mx.nd.NDArray, teacher: mx.nd.NDArray) -> mx.nd.NDArray:
        """Per-sample KL(teacher || student) of the softened distributions, times T**2."""
        t = self.temperature
        log_p_student = mx.nd.log_softmax(student / t, axis=1)
        p_teacher = mx.nd.softmax(teacher / t, axis=1)
        log_p_teacher = mx.nd.log_softmax(teacher / t, axis=1)
        return (p_teacher * (log_p_teacher - log_p_student)).sum(axis=1) * (t * t)

    def cross_entropy(self, student: mx.nd.NDArray, labels: mx.nd.NDArray) -> mx.nd.NDArray:
        return -mx.nd.pick(mx.nd.log_softmax(student, axis=1), labels, axis=1)

    def __call__(self, student: mx.nd.NDArray, labels: mx.nd.NDArray, teacher: mx.nd.NDArray | None) -> mx.nd.NDArray:
        """Per-sample loss; without a teacher (the reference itself) it is the label loss alone."""
        ce = self.cross_entropy(student, labels)
        if teacher is None or self.alpha == 0.0:
            return ce
        return (1.0 - self.alpha) * ce + self.alpha * self.kl(student, teacher)
