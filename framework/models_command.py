"""``splitrun models``: every registered model (plug-ins included) and what splitting it costs.

Each model is planned from its architecture alone (shapes, no weights: see
:func:`~splitnet.partitioners.graph_from_architecture`), so listing even VGG16 takes well
under a second. The figures are the plan's own accounting: weights and GFLOPs of the whole
model, of the merge head, and of each branch for ``--branches N``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.table import Table
from splitnet.framework.console import results_console
from splitnet.framework.errors import SplitnetError
from splitnet.partitioners import DEFAULT_MULTIPLE, graph_from_architecture, normalise_shares, partitioner_for
from splitnet.zoo import get_model_spec, list_models


@dataclass(frozen=True)
class ModelRow:
    model: str
    family: str
    partitioner: str
    input_shape: tuple[int, ...]
    classes: int
    params: int
    gflops: float
    head_params: int
    n: int
    branch_params: tuple[int, ...]
    branch_gflops: tuple[float, ...]
    description: str
    problem: str = ""


def model_row(name: str, n: int, multiple: int = DEFAULT_MULTIPLE) -> ModelRow:
    """Plan ``name`` for ``n`` branches from its shapes; a model that cannot split says why."""
    spec = get_model_spec(name)
    graph = graph_from_architecture(spec.factory(spec.classes), spec.input_shape)
    params = int(sum(value.size for value in graph.params.values()))
    rule_name = "-"
    try:
        rule = partitioner_for(spec.family)
        rule_name = rule.name
        plan = rule.plan(graph, model=name, n=n, widths=None, multiple=multiple)
    except SplitnetError as exc:
        return ModelRow(
            name,
            spec.family,
            rule_name,
            tuple(spec.input_shape),
            spec.classes,
            params,
            0.0,
            0,
            n,
            (),
            (),
            spec.description,
            problem=exc.one_line(),
        )
    return ModelRow(
        model=name,
        family=spec.family,
        partitioner=plan.partitioner,
        input_shape=tuple(spec.input_shape),
        classes=spec.classes,
        params=plan.reference_params,
        gflops=plan.reference_flops / 1e9,
        head_params=plan.head.params,
        n=n,
        branch_params=tuple(b.params for b in plan.branches),
        branch_gflops=tuple(b.flops / 1e9 for b in plan.branches),
        description=spec.description,
    )


def _branches_text(row: ModelRow) -> str:
    if row.problem:
        return row.problem
    pairs = [f"{p / 1e6:.2f} / {g:.3f}" for p, g in zip(row.branch_params, row.branch_gflops, strict=True)]
    return f"{row.n} x {pairs[0]}" if len(set(pairs)) == 1 else ", ".join(pairs)


def models(n: int, multiple: int, json_path: Path | None) -> int:
    normalise_shares(n, None)  # a bad N is one error, not one per model
    if multiple < 1:
        raise SplitnetError(f"--multiple must be >= 1, got {multiple}", "pass --multiple 8 (or 1, 4, 16)")
    rows = [model_row(name, n, multiple) for name in list_models()]
    table = Table(title=f"Registered models (branches planned for N={n}, multiple {multiple})")
    for column in ("model", "family", "partitioner", "input", "params (M)", "GFLOPs", "head params (M)"):
        table.add_column(column, justify="right" if "(" in column or column == "GFLOPs" else "left")
    table.add_column("branches: params (M) / GFLOPs", justify="right")
    for row in rows:
        table.add_row(
            row.model,
            row.family,
            row.partitioner,
            "x".join(str(d) for d in row.input_shape[1:]),
            f"{row.params / 1e6:.2f}",
            f"{row.gflops:.3f}" if not row.problem else "-",
            f"{row.head_params / 1e6:.2f}" if not row.problem else "-",
            _branches_text(row),
        )
    results_console().print(table)
    if json_path is not None:
        json_path.write_text(json.dumps([asdict(row) for row in rows], indent=2))
    return 0
