"""Strategies: halo math, cut points, lossless spatial and pipeline runs on real local boards, compare."""

from __future__ import annotations

import itertools
import json
import threading
import time
import warnings
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
from conftest import ATOL_FP32, random_input, splitrun, splitrun_popen
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from mxnet.gluon import nn
from PIL import Image

from splitnet.framework.errors import SplitnetError
from splitnet.partitioners import graph_from_block
from splitnet.partitioners.graph import DATA
from splitnet.runtime.fleet import Fleet
from splitnet.runtime.inventory_file import load_inventory, resolve_inventory
from splitnet.strategies import RunOptions, StrategyOptions, get_strategy, list_strategies
from splitnet.strategies.cuts import balanced_cuts, cut_points, op_flops, range_part, tensor_bytes
from splitnet.strategies.fused import fusable_cuts, tile_graph, tile_part
from splitnet.strategies.pieces import LoadedPieces, Piece, board_for
from splitnet.strategies.pipeline_stages import run_pipelined
from splitnet.strategies.runner import check_all, prepare, run_on
from splitnet.strategies.spatial import choose_plan
from splitnet.strategies.tiles import Window, grid_regions, split_even

EXACT = 1e-5  # MXNet tiles vs MXNet unsplit: the same arithmetic on the same values


def _net(layers, shape, seed=0):
    net = nn.HybridSequential()
    net.add(*layers)
    mx.random.seed(seed)
    net.initialize(mx.init.Xavier())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return graph_from_block(net, shape)


def _stitched(graph, end, rows, cols, x):
    full = range_part(graph, DATA, end, "full")(x)
    tiles = []
    for i, region in enumerate(grid_regions(full.shape[2], full.shape[3], rows, cols)):
        tile = tile_graph(graph, end, region)
        (r0, r1), (c0, c1) = tile.input_region
        tiles.append(tile_part(graph, tile, f"tile{i}")(x[:, :, r0:r1, c0:c1]))
    bands = [np.concatenate(tiles[r * cols : (r + 1) * cols], axis=3) for r in range(rows)]
    return np.concatenate(bands, axis=2), full


# --- halo math -------------------------------------------------------------------------------


def test_window_intervals_by_hand():
    conv = Window(kernel=3, stride=2, pad=1)
    assert conv.input_interval((0, 1)) == (-1, 2)  # reaches one row into the top padding
    assert conv.input_interval((3, 5)) == (5, 10)
    assert Window(kernel=3, dilation=2).input_interval((0, 2)) == (0, 6)
    assert Window(kernel=7, stride=2, pad=3).output_size(224) == 112
    assert Window(kernel=3, stride=2).output_size(8, ceil=True) == 4
    assert Window(kernel=3, stride=2).output_size(8) == 3


@given(size=st.integers(1, 60), parts=st.integers(1, 60))
def test_split_even_covers_the_map_with_near_equal_bands(size, parts):
    if parts > size:
        with pytest.raises(SplitnetError, match="tiles but the tiled feature map has only"):
            split_even(size, parts)
        return
    bands = split_even(size, parts)
    assert bands[0][0] == 0 and bands[-1][1] == size
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bands))
    lengths = [b - a for a, b in bands]
    assert min(lengths) >= 1 and max(lengths) - min(lengths) <= 1


@given(
    kernel=st.integers(1, 5),
    stride=st.integers(1, 3),
    pad=st.integers(0, 2),
    dilation=st.integers(1, 2),
    size=st.integers(9, 31),
)
def test_window_input_interval_matches_the_outputs_that_read_each_input(kernel, stride, pad, dilation, size):
    """Every output of an interval reads only inside its input interval, and the ends are read."""
    window = Window(kernel, stride, pad, dilation)
    if window.extent > size + 2 * pad:
        return
    outputs = window.output_size(size)
    for start in range(outputs):
        stop = min(outputs, start + 3)
        lo, hi = window.input_interval((start, stop))
        read = {o * stride - pad + dilation * t for o in range(start, stop) for t in range(kernel)}
        assert min(read) == lo and max(read) == hi - 1


_LAYER = st.sampled_from(["conv", "conv_s2", "conv_d2", "conv5", "max", "max_s2", "avg", "relu", "bn"])


def _layer(kind: str, channels: int):
    return {
        "conv": lambda: nn.Conv2D(channels, 3, padding=1),
        "conv_s2": lambda: nn.Conv2D(channels, 3, strides=2, padding=1),
        "conv_d2": lambda: nn.Conv2D(channels, 3, padding=2, dilation=2),
        "conv5": lambda: nn.Conv2D(channels, 5, strides=2, padding=1),
        "max": lambda: nn.MaxPool2D(3, 1, 1),
        "max_s2": lambda: nn.MaxPool2D(3, 2, 1),
        "avg": lambda: nn.AvgPool2D(3, 2, 1),
        "relu": lambda: nn.Activation("relu"),
        "bn": lambda: nn.BatchNorm(),
    }[kind]()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=st.sampled_from(["conv", "conv_s2", "conv_d2", "conv5"]),  # a CNN starts with weights
    kinds=st.lists(_LAYER, min_size=0, max_size=3),
    height=st.integers(11, 29),
    width=st.integers(11, 29),
    tiles=st.integers(2, 4),
    seed=st.integers(0, 1000),
)
def test_stitched_tiles_equal_the_unsplit_layers(first, kinds, height, width, tiles, seed):
    """Random stacks of stride, padding, dilation and pooling at odd sizes, 2..4 row tiles."""
    shape = (1, 3, height, width)
    try:
        graph = _net([_layer(k, 4) for k in [first, *kinds]], shape, seed)
    except (mx.base.MXNetError, ValueError, mx.gluon.parameter.DeferredInitializationError):
        # the stack shrinks the map below a kernel: not a network
        assume(False)
    end = graph.ops()[-1]
    rows = graph.shape(end)[2]
    if tiles > rows:
        with pytest.raises(SplitnetError, match="more|only"):
            grid_regions(rows, graph.shape(end)[3], tiles)
        return
    x = random_input(shape, seed)  # negative values too: max pooling must not pad with zeros
    stitched, full = _stitched(graph, end, tiles, 1, x)
    assert stitched.shape == full.shape
    np.testing.assert_allclose(stitched, full, atol=EXACT, rtol=0)


@pytest.mark.parametrize("rows,cols", [(2, 1), (3, 1), (4, 1), (2, 2), (1, 3)])
def test_tiles_through_residual_blocks_equal_the_reference(tiny_graph, rows, cols):
    """Every fusable cut of resnet_tiny (shortcuts, strided downsampling), row bands and a grid."""
    x = random_input(tiny_graph.input_shape, seed=rows * 10 + cols)
    for end in fusable_cuts(tiny_graph):
        stitched, full = _stitched(tiny_graph, end, rows, cols, x)
        np.testing.assert_allclose(stitched, full, atol=EXACT, rtol=0, err_msg=end)


def test_halo_regions_of_a_strided_stack():
    """conv 3x3 s2 p1 (17 -> 9) then conv 3x3 p1: output rows 0-4 read rows -1..11 of the input (-1: padding);
    all 9 columns read columns -1..17, padding on both sides."""
    graph = _net([nn.Conv2D(2, 3, strides=2, padding=1), nn.Conv2D(2, 3, padding=1)], (1, 1, 17, 17))
    first, second = graph.ops()
    tile = tile_graph(graph, second, ((0, 5), (0, 9)))
    assert tile.reads[(second, first)] == ((-1, 6), (-1, 10))
    assert tile.regions[first] == ((0, 6), (0, 9))
    assert tile.reads[(first, DATA)] == ((-1, 12), (-1, 18))
    assert tile.input_region == ((0, 12), (0, 17))


def _op(graph, suffix: str) -> str:
    """The op whose name ends with ``suffix`` (Gluon's name prefix counts the models made before)."""
    (name,) = [op for op in graph.ops() if op.endswith(suffix)]
    return name


def test_only_spatially_local_layers_are_fused(tiny_graph):
    fusable = fusable_cuts(tiny_graph)
    assert fusable[-1] == _op(tiny_graph, "_stage4_activation0")  # global pooling ends the fusable range
    with pytest.raises(SplitnetError, match="cannot be tiled"):
        tile_graph(tiny_graph, _op(tiny_graph, "_pool0_fwd"), ((0, 1), (0, 1)))


def test_the_chosen_fused_range_minimises_the_estimate(tiny_graph):
    plan = choose_plan(tiny_graph, 2, None)
    for cut in fusable_cuts(tiny_graph):
        assert plan.estimate <= choose_plan(tiny_graph, 2, cut).estimate
    assert plan.redundancy >= 1.0


def test_more_tiles_than_rows_is_an_error(tiny_graph):
    with pytest.raises(SplitnetError, match="5 tiles but the tiled feature map has only 4 rows"):
        choose_plan(tiny_graph, 5, _op(tiny_graph, "_stage4_activation0"))
    with pytest.raises(SplitnetError, match="is not a cut point"):
        choose_plan(tiny_graph, 2, "no_such_layer")


# --- cut points and pipeline stages ----------------------------------------------------------


def test_cut_points_hold_the_only_live_tensor(tiny_graph):
    cuts = cut_points(tiny_graph)
    assert cuts[-1] == tiny_graph.output
    assert _op(tiny_graph, "_stage1_conv0_fwd") not in cuts  # inside a block the shortcut is alive too
    ops = tiny_graph.ops()
    for cut in cuts:
        later = ops[ops.index(cut) + 1 :]
        earlier = set(ops[: ops.index(cut) + 1]) | {DATA}
        read = {src for op in later for src in tiny_graph.data_inputs(op) if src in earlier}
        assert read <= {cut}


def test_chained_ranges_reproduce_the_model(tiny_reference, tiny_graph):
    x = random_input(tiny_graph.input_shape)
    expected = tiny_reference.block(mx.nd.array(x)).asnumpy()
    for stages in range(1, 5):
        y = x
        for i, r in enumerate(balanced_cuts(tiny_graph, stages)):
            y = range_part(tiny_graph, r.start, r.end, f"s{i}")(y)
        np.testing.assert_allclose(y, expected, atol=EXACT, rtol=0)


@pytest.mark.parametrize("stages", [1, 2, 3, 4, 5])
def test_balanced_cuts_are_optimal(tiny_graph, stages):
    """The DP's largest stage equals brute force over every choice of cut points."""
    ranges = balanced_cuts(tiny_graph, stages)
    ops = tiny_graph.ops()
    assert sum(r.flops for r in ranges) == sum(op_flops(tiny_graph, op) for op in ops)
    assert [len(r.ops) > 0 for r in ranges] == [True] * stages
    inner = cut_points(tiny_graph)[:-1]
    best = min(
        max(
            sum(op_flops(tiny_graph, op) for op in ops[a:b])
            for a, b in itertools.pairwise([0, *(ops.index(c) + 1 for c in chosen), len(ops)])
        )
        for chosen in itertools.combinations(inner, stages - 1)
    )
    assert max(r.flops for r in ranges) == best


def test_too_many_stages_is_an_error(tiny_graph):
    with pytest.raises(SplitnetError, match="single-tensor cut points"):
        balanced_cuts(tiny_graph, len(cut_points(tiny_graph)) + 1)


class _SleepyPieces:
    """The scheduler's contract (pieces, call) with stages that sleep, to see frames overlap."""

    def __init__(self, stages: int, seconds: float, fail_at: int | None = None) -> None:
        self.pieces = [None] * stages
        self.seconds = seconds
        self.fail_at = fail_at
        self.busy = 0
        self.most_busy = 0
        self._lock = threading.Lock()

    def call(self, stage: int, x):
        with self._lock:
            self.busy += 1
            self.most_busy = max(self.most_busy, self.busy)
        time.sleep(self.seconds)
        with self._lock:
            self.busy -= 1
        if self.fail_at is not None and stage == 1 and x == self.fail_at:
            raise SplitnetError("stage1 on board x did not finish", "check the board")
        return x


def test_pipelined_frames_overlap_and_keep_their_order():
    pieces = _SleepyPieces(stages=3, seconds=0.05)
    outputs, latencies, wall = run_pipelined(pieces, list(range(8)), window=3)
    assert outputs == list(range(8))
    assert pieces.most_busy == 3  # every stage busy with a different frame at once
    assert wall < 0.6 * 8 * 3 * 0.05  # sequential would take 1.2 s; pipelined about (8 + 2) x 0.05
    assert all(latency >= 3 * 0.05 for latency in latencies)


def test_a_failed_stage_ends_the_pipeline_with_its_error():
    pieces = _SleepyPieces(stages=3, seconds=0.01, fail_at=4)
    with pytest.raises(SplitnetError, match="stage1 on board x"):
        run_pipelined(pieces, list(range(8)), window=3)


# --- real local boards ---------------------------------------------------------------------


@pytest.mark.boards
def test_a_killed_board_mid_pipeline_is_one_error_naming_piece_and_board(tiny_graph, no_leaked_boards):
    inventory = resolve_inventory("local")
    x = random_input(tiny_graph.input_shape)
    with Fleet(inventory) as fleet:
        ranges = balanced_cuts(tiny_graph, 2)
        pieces = [
            Piece(range_part(tiny_graph, r.start, r.end, f"stage{i}"), board_for(inventory, i), r.flops)
            for i, r in enumerate(ranges)
        ]
        loaded = LoadedPieces(pieces, fleet.sessions())
        try:
            loaded.compile()
            loaded.upload()
            run_pipelined(loaded, [x] * 3, window=2)
            fleet.cluster.kill_board("cpu1")
            started = time.monotonic()
            with pytest.raises(SplitnetError, match="stage1 on cpu1 failed"):
                run_pipelined(loaded, [x] * 4, window=2)
            assert time.monotonic() - started < 30  # an error at once, not the 60 s first-call deadline
            assert loaded.dead == {"cpu1"}
        finally:
            loaded.close()


@pytest.fixture(scope="module")
def four_boards(tmp_path_factory):
    path = tmp_path_factory.mktemp("inventory") / "four.yaml"
    boards = "".join(f"  - name: cpu{i}\n    target: x86\n    local: true\n" for i in range(4))
    path.write_text(f"description: four local boards\ntracker:\n  local: true\nboards:\n{boards}")
    inventory = load_inventory(path)
    with Fleet(inventory) as fleet:
        yield path, fleet


@pytest.mark.boards
@pytest.mark.parametrize("n", [2, 3, 4])
def test_spatial_and_pipeline_are_lossless_on_boards(four_boards, n, tiny_graph):
    path, fleet = four_boards
    options = StrategyOptions(run=RunOptions(model="resnet_tiny", branches=n, runs=3, warmup=1, inventory=path))
    prepared = prepare(options)
    strategies = [get_strategy("spatial"), get_strategy("pipeline")]
    check_all(strategies, options, prepared)
    spatial, pipeline = run_on(fleet, strategies, options, prepared)
    for result in (spatial, pipeline):
        assert result.ok, result.checks
        assert result.max_abs_diff <= ATOL_FP32 and result.top1_agreement == 1.0
        assert result.frames == len(prepared.frames) + 1 + 3 and result.latency.frames == 3
        assert result.throughput_fps > 0 and result.rpc_bytes_per_frame > result.between_boards_bytes_per_frame
        assert all(p.compute_ms > 0 for p in result.pieces)
    assert [p.board for p in spatial.pieces[:n]] == [f"cpu{i}" for i in range(n)]  # one tile per board
    assert sum(p.out_bytes for p in spatial.pieces[:n]) == spatial.between_boards_bytes_per_frame
    assert [p.board for p in pipeline.pieces] == [f"cpu{i}" for i in range(n)]
    assert pipeline.in_flight == n
    ends = [r.end for r in balanced_cuts(tiny_graph, n)]
    assert pipeline.between_boards_bytes_per_frame == sum(tensor_bytes(tiny_graph, e) for e in ends[:-1])


@pytest.mark.boards
def test_compare_end_to_end_writes_table_json_and_png(tmp_path):
    report, plot = tmp_path / "compare.json", tmp_path / "compare.png"
    result = splitrun(
        "compare",
        *("--model", "resnet_tiny", "--inventory", "local", "--runs", "3", "--warmup", "1"),
        *("--json", str(report), "--plot", str(plot)),
    )
    assert result.returncode == 0, result.stderr
    for text in ("Strategies side by side", "single", "spatial", "pipeline", "p50 ms", "frames/s", "max abs diff"):
        assert text in result.stdout
    data = json.loads(report.read_text())
    by_name = {s["strategy"]: s for s in data["strategies"]}
    assert sorted(by_name) == sorted(list_strategies()) and data["ok"]
    for name in ("spatial", "pipeline", "single"):
        assert by_name[name]["lossless"] and by_name[name]["max_abs_diff"] <= ATOL_FP32
    assert not by_name["branch"]["lossless"] and by_name["branch"]["max_abs_diff"] > ATOL_FP32  # the split's cost
    assert {s["n"] for s in data["strategies"] if s["strategy"] != "single"} == {2}
    for s in data["strategies"]:
        assert s["latency"]["frames"] == 3 and s["throughput_fps"] > 0 and s["rpc_bytes_per_frame"] > 0
        boards = {p["board"] for p in s["pieces"]} - {"host"}
        assert (s["between_boards_bytes_per_frame"] > 0) == (s["strategy"] != "single")
        assert boards == ({"cpu0"} if s["strategy"] == "single" else {"cpu0", "cpu1"})
    with Image.open(plot) as image:
        assert image.format == "PNG" and image.size[0] > image.size[1] > 100


@pytest.mark.boards
def test_run_with_a_strategy_prints_its_pieces_and_writes_json(tmp_path):
    report = tmp_path / "spatial.json"
    result = splitrun(
        *("--strategy", "spatial", "--model", "resnet_tiny", "--branches", "3", "--inventory", "local"),
        *("--runs", "2", "--warmup", "0", "--json", str(report)),
    )
    assert result.returncode == 0, result.stderr
    for text in ("strategy spatial", "Pieces", "tile2", "rest", "halo overhead", "PASS", "between boards"):
        assert text in result.stdout
    data = json.loads(report.read_text())
    assert data["ok"] and data["strategy"] == "spatial" and data["max_abs_diff"] <= ATOL_FP32
    assert [p["board"] for p in data["pieces"]] == ["cpu0", "cpu1", "cpu0", "cpu1"]  # 3 tiles, then the rest


BAD_INPUT = {
    "unknown strategy": (["run", "--strategy", "unknown"], "unknown strategy 'unknown'"),
    "more tiles than rows": (
        ["run", "--strategy", "spatial", "--fuse-until", "resnetv10_stage4_activation0", "--branches", "5"],
        "5 tiles but the tiled feature map has only 4 rows",
    ),
    "branch-only option": (["run", "--strategy", "pipeline", "--policy", "replicate"], "--policy applies to"),
    "unknown in compare": (["compare", "--strategies", "branch,nope"], "unknown strategy 'nope'"),
}


def test_bad_strategy_input_is_one_line_before_boards_start():
    """All cases at once (each is a fresh splitrun, mostly import time): exit 2, one error line, no boards."""
    procs = {case: splitrun_popen(*args, "--model", "resnet_tiny") for case, (args, _) in BAD_INPUT.items()}
    for case, proc in procs.items():
        out, err = proc.communicate(timeout=180)
        expected = BAD_INPUT[case][1]
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert proc.returncode == 2, (case, err)
        assert len(errors) == 1 and expected in errors[0] and "fix:" in errors[0], (case, err)
        assert "Traceback" not in err and "start boards" not in err and "upload" not in err, (case, err)


def test_compare_options_are_checked_before_any_work(tmp_path):
    from splitnet.commands.cli import build_parser
    from splitnet.commands.compare import execute as compare

    for argv, expected in (
        (["--plot", str(tmp_path / "out.txt")], "not a .png path"),
        (["--runs", "0"], "--runs must be at least 1"),
        (["--strategies", ","], "names no strategy"),
        (["--timeout", "0"], "--timeout must be positive"),
    ):
        with pytest.raises(SplitnetError, match=expected):
            compare(build_parser("compare").parse_args(argv))


def test_readme_documents_strategies_and_compare_columns():
    from splitnet.strategies.compare_report import COMPARE_COLUMNS

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for column in COMPARE_COLUMNS:
        assert f"| {column} |" in readme, column
    for name in list_strategies():
        assert f"`{name}`" in readme, name


@pytest.mark.slow
@pytest.mark.boards
@pytest.mark.parametrize("strategy", ["spatial", "pipeline"])
def test_resnet18_is_lossless(strategy, tmp_path):
    images = tmp_path / "one"
    images.mkdir()
    Image.new("RGB", (256, 256), (30, 140, 200)).save(images / "blue.png")
    report = tmp_path / "r.json"
    result = splitrun(
        *("--strategy", strategy, "--inventory", "local", "--images", str(images)),
        *("--runs", "1", "--warmup", "0", "--json", str(report)),
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    assert data["ok"] and data["max_abs_diff"] <= ATOL_FP32 and data["model"] == "resnet18_v1"


@pytest.mark.boards
def test_compare_runs_the_fine_tuned_split_on_the_boards_and_in_its_accuracy_columns(tmp_path):
    """resnet18_v1_thumb16 ships a fine-tuned N=2 split: compare's branch row must be that split's."""
    from splitnet.framework.images import load_frames
    from splitnet.partitioners import partition
    from splitnet.strategies import SplitRequest
    from splitnet.zoo import load_reference

    model = "resnet18_v1_thumb16"
    path = tmp_path / "compare.json"
    args = ("compare", "--strategies", "branch", "--model", model, "--branches", "2", "--runs", "2", "--warmup", "0")
    result = splitrun(*args, "--json", str(path))
    assert result.returncode == 0, result.stderr
    (branch,) = json.loads(path.read_text())["strategies"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = load_reference(model)
        tuned, entry = SplitRequest.of(model, 2).split(reference)
        sliced = partition(reference, 2)
    assert entry is not None  # the manifest ships it
    frames, _ = load_frames(None, reference.spec.input_shape)
    unsplit = np.concatenate([reference.block(mx.nd.array(f.tensor)).asnumpy() for f in frames])
    tuned_logits = np.concatenate([tuned(f.tensor) for f in frames])
    sliced_logits = np.concatenate([sliced(f.tensor) for f in frames])
    tuned_diff = float(np.abs(tuned_logits - unsplit).max())
    assert abs(tuned_diff - float(np.abs(sliced_logits - unsplit).max())) > 1e-3  # the two are told apart
    assert branch["max_abs_diff"] == pytest.approx(tuned_diff, rel=1e-5)
    assert branch["top1_agreement"] == pytest.approx(float(np.mean(tuned_logits.argmax(1) == unsplit.argmax(1))))
    checks = {c["name"]: c for c in branch["checks"]}
    assert checks["distributed vs in-process split (MXNet)"]["status"] == "PASS"  # the boards ran those weights
    assert entry["file"] in checks["accuracy source"]["detail"]
