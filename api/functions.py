"""Load a model, split it, run the whole job: the stages ``splitrun`` runs, as functions.

Each is a thin layer over the library: :func:`load_model` is the zoo's reference with its
weights, :func:`split` checks the request once (:class:`~splitnet.strategies.SplitRequest`),
plans and applies the split and swaps in the fine-tuned weights when they ship, and
:func:`run` is ``splitrun run`` itself (the command calls it).
"""

from __future__ import annotations

from ..framework.report import RunReport
from ..framework.shares import DEFAULT_MULTIPLE
from ..framework.split_model import SplitModel
from ..strategies import RunOptions, SplitRequest
from ..strategies import run as run_branch_strategy
from ..zoo import Reference, list_models, load_reference

__all__ = ["list_models", "load_model", "run", "split"]


def load_model(name: str, classes: int | None = None, seed: int = 0) -> Reference:
    """The registered model ``name`` with its trained weights when they ship, else a seeded init.

    ``.block`` is the Gluon block, ``.source`` says where the weights came from.
    """
    return load_reference(name, classes=classes, seed=seed)


def split(
    model: Reference | str,
    branches: int = 2,
    widths: tuple[float, ...] | None = None,
    multiple: int = DEFAULT_MULTIPLE,
) -> SplitModel:
    """``model`` split into ``branches`` narrow branches and a merge head.

    The split has the fine-tuned weights of the params manifest when they ship for this
    model, N and widths, else channel slices of the reference's. ``split(x)`` runs it
    in-process (MXNet), ``split.plan`` says what each branch holds and costs.
    """
    name = model if isinstance(model, str) else model.spec.name
    request = SplitRequest.of(name, branches, widths, multiple)
    return request.split(load_model(name) if isinstance(model, str) else model)[0]


def run(options: RunOptions | None = None, **fields) -> RunReport:
    """``splitrun run`` as a function: ``run(model="resnet_tiny", branches=2)`` or ``run(RunOptions(...))``.

    Starts the inventory's boards, runs the verify pass, warm-up, timed and pipelined frames,
    checks every answer, stops the boards, and returns the report (``print`` it with
    :func:`splitnet.framework.report.render`, or ``report.to_dict()``).
    """
    return run_branch_strategy(options if options is not None else RunOptions(**fields))
