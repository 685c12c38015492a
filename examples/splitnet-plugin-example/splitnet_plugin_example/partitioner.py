"""A partitioner that finds the merge head by layer name, registered through an entry point.

splitnet's own ``cnn`` partitioner starts the head at the first dense layer. This one asks
the model instead: everything in the Gluon name scope ``classifier_`` is the head, everything
before it is the body. The generic half, sharing every layer's channels out and counting parameters and FLOPs, is
splitnet's :func:`~splitnet.partitioners.branch_plan.build_plan`.
"""

from __future__ import annotations

from splitnet.framework.errors import SplitnetError
from splitnet.partitioners import ModelGraph, SplitPlan
from splitnet.partitioners.branch_plan import build_plan

HEAD_SCOPE = "classifier_"


class ScopePartitioner:
    name = "by_scope"
    families = ("scoped_cnn",)

    def plan(self, graph: ModelGraph, *, model: str, n: int, widths, multiple: int) -> SplitPlan:
        head = [op for op in graph.ops() if HEAD_SCOPE in op]
        if not head or graph.op(head[0]) != "FullyConnected":
            raise SplitnetError(
                f"{model} has no dense layer in a {HEAD_SCOPE!r} name scope",
                "create the classifier Dense layers inside HybridSequential(prefix='classifier_').name_scope()",
            )
        feature = graph.data_inputs(head[0])[0]
        return build_plan(
            graph,
            model=model,
            partitioner=self.name,
            feature_tensor=feature,
            head_ops=head,
            n=n,
            widths=widths,
            multiple=multiple,
        )
