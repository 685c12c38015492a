"""The tune stage: batch-norm folding, task extraction, database lookup, a real tiny tuning run."""

from __future__ import annotations

import json
import shutil
import signal
import time

import numpy as np
import onnx
import pytest
from conftest import ATOL_FP32, random_input, splitrun, splitrun_popen

from splitnet.framework.compile import LocalModule, compile_part, to_onnx
from splitnet.framework.errors import SplitnetError
from splitnet.framework.onnx_fold import fold_batch_norm
from splitnet.framework.targets import host_target
from splitnet.partitioners import partition
from splitnet.tuning.key import DB_FILES, KEY_FILE, TuningKey, cpu_distance, cpu_family, find_database
from splitnet.tuning.tuner import STATE_FILE, WORK_FOLDER, extract_tasks


@pytest.fixture(scope="module")
def tiny_split(tiny_reference):
    return partition(tiny_reference, 2, None, 8)


def test_batch_norm_is_folded_into_every_convolution(tiny_split, tmp_path):
    model = to_onnx(tiny_split.branches[0], tmp_path / "b.onnx")
    norms = sum(n.op_type == "BatchNormalization" for n in model.graph.node)
    convs = sum(n.op_type == "Conv" for n in model.graph.node)
    assert norms > 0
    assert fold_batch_norm(model) == norms
    assert not [n for n in model.graph.node if n.op_type == "BatchNormalization"]
    assert sum(n.op_type == "Conv" for n in model.graph.node) == convs
    onnx.checker.check_model(model)
    unused = {t.name for t in model.graph.initializer} - {i for n in model.graph.node for i in n.input}
    assert not unused  # the statistics and the unfolded kernels are gone


def test_folded_build_matches_mxnet(tiny_split, tmp_path):
    for part in (tiny_split.branches[1], tiny_split.head):
        module = LocalModule(compile_part(part, host_target(), cache_dir=tmp_path))
        inputs = [random_input(s, seed=3) for s in part.input_shapes]
        assert np.abs(module(*inputs) - part(*inputs)).max() <= ATOL_FP32


def test_equal_branches_share_their_tasks(tiny_split):
    one = extract_tasks([tiny_split.branches[0], tiny_split.head], host_target())
    both = extract_tasks([*tiny_split.branches, tiny_split.head], host_target())
    assert len(both) == len(one)
    head_only = {t.name for t in extract_tasks([tiny_split.head], host_target())}
    weights_one = {t.name: t.weight for t in one}
    for task in both:
        if task.name not in head_only:
            assert task.weight == 2 * weights_one[task.name]


def _database(root, key: TuningKey, name: str | None = None):
    folder = root / (name or key.folder_name)
    folder.mkdir(parents=True)
    for db_file in DB_FILES:
        (folder / db_file).write_text("")
    (folder / KEY_FILE).write_text(json.dumps(key.to_json()))
    return folder


def test_lookup_exact_other_cpu_and_none(tmp_path):
    target = {"kind": "llvm", "mcpu": "znver4", "mtriple": "x86_64-linux-gnu", "num-cores": 1}
    key = TuningKey.of("m", (1, 3, 8, 8), (0.5, 0.5), target)
    assert find_database(key, tmp_path) is None
    other = TuningKey.of("m", (1, 3, 8, 8), (0.5, 0.5), {**target, "mcpu": "skylake"})
    _database(tmp_path, other)
    near = find_database(key, tmp_path)
    assert near is not None and not near.exact and "another CPU (skylake)" in near.note
    exact = _database(tmp_path, key)
    match = find_database(key, tmp_path)
    assert match.exact and match.path == exact and match.note.startswith("tuned")
    assert find_database(TuningKey.of("m", (1, 3, 8, 8), (1.0,), target), tmp_path) is None  # other N
    assert find_database(TuningKey.of("m", (1, 3, 8, 8), (0.5, 0.5), {**target, "num-cores": 2}), tmp_path) is None
    (tmp_path / "broken").mkdir()
    for db_file in DB_FILES:
        (tmp_path / "broken" / db_file).write_text("")
    (tmp_path / "broken" / KEY_FILE).write_text("{not json")
    assert find_database(key, tmp_path).path == exact  # a malformed key is skipped, not trusted
    (exact / KEY_FILE).write_text(json.dumps({**key.to_json(), "records": 0}))
    assert find_database(key, tmp_path).path != exact  # an empty database would tune nothing: skipped


def test_a_database_brings_its_layout_and_nhwc_is_preferred_between_equals(tmp_path):
    target = {"kind": "llvm", "mcpu": "znver4", "mtriple": "x86_64-linux-gnu", "num-cores": 1}
    key = TuningKey.of("m", (1, 3, 8, 8), (0.5, 0.5), target)
    nchw = _database(tmp_path, key)
    assert find_database(key, tmp_path).key.layout == "NCHW"
    # a key written before layouts existed reads as NCHW
    assert TuningKey.from_json({k: v for k, v in key.to_json().items() if k != "layout"}).layout == "NCHW"
    # an NHWC database for another CPU does not beat this CPU's NCHW one...
    far = TuningKey.of("m", (1, 3, 8, 8), (0.5, 0.5), {**target, "mcpu": "rocketlake"}, layout="NHWC")
    _database(tmp_path, far)
    assert find_database(key, tmp_path).path == nchw
    # ...but this CPU's NHWC one does, whatever layout the build asked for: it brings its own
    nhwc_key = TuningKey.of("m", (1, 3, 8, 8), (0.5, 0.5), target, layout="NHWC")
    nhwc = _database(tmp_path, nhwc_key)
    assert nhwc.name == nchw.name + "_nhwc"
    for asked in (key, nhwc_key):
        match = find_database(asked, tmp_path)
        assert match.path == nhwc and match.exact and match.key.layout == "NHWC"
    with pytest.raises(SplitnetError, match="unknown layout"):
        TuningKey.of("m", (1, 3, 8, 8), (0.5, 0.5), target, layout="NCHW8c")


def test_the_nearest_cpu_is_applied_when_this_one_has_none(tmp_path):
    """Databases ship per CPU; a machine with none of its own gets the closest (vector width, then vendor)."""
    target = {"kind": "llvm", "mcpu": "icelake-server", "mtriple": "x86_64-linux-gnu", "num-cores": 1}
    key = TuningKey.of("m", (1, 3, 8, 8), (0.5, 0.5), target)
    for cpu in ("znver3", "haswell", "znver4", "rocketlake"):  # found in folder order: haswell first
        _database(tmp_path, TuningKey.of("m", (1, 3, 8, 8), (0.5, 0.5), {**target, "mcpu": cpu}))
    assert find_database(key, tmp_path).key.target["mcpu"] == "rocketlake"  # AVX-512, Intel
    amd = TuningKey.of("m", (1, 3, 8, 8), (0.5, 0.5), {**target, "mcpu": "znver5"})
    assert find_database(amd, tmp_path).key.target["mcpu"] == "znver4"  # AVX-512, AMD
    old = TuningKey.of("m", (1, 3, 8, 8), (0.5, 0.5), {**target, "mcpu": "skylake"})
    assert find_database(old, tmp_path).key.target["mcpu"] == "haswell"  # AVX2, Intel
    unknown = TuningKey.of("m", (1, 3, 8, 8), (0.5, 0.5), {**target, "mcpu": "mystery"})
    assert find_database(unknown, tmp_path) is not None  # still applied: a schedule never changes results
    assert cpu_distance("znver4", "znver4") == 0 and cpu_family("rocketlake") == ("avx512", "intel")


def test_shipped_databases_have_keys_and_records():
    from splitnet.tuning import tuning_root

    shipped = [p for p in tuning_root().iterdir() if (p / KEY_FILE).exists()]
    for folder in shipped:
        key = json.loads((folder / KEY_FILE).read_text())
        assert key["records"] > 0 and all((folder / f).stat().st_size > 0 for f in DB_FILES)
        assert folder.name == TuningKey.from_json(key).folder_name


@pytest.mark.boards
def test_tune_resume_and_apply(tmp_path):
    """A real tiny tuning run, continued with --resume, then applied by splitrun with a check."""
    out = tmp_path / "tuning"
    args = ("tune", "--model", "resnet_tiny", "--branches", "2", "--batch", "8", "--out", str(out))
    first = splitrun(*args, "--trials", "8", timeout=600)
    assert first.returncode == 0, first.stderr
    assert "database written" in first.stderr and "ETA" in first.stderr
    (folder,) = [p for p in out.iterdir() if p.name != WORK_FOLDER]
    # A round can hold fewer candidates than --batch (small elementwise tasks, like the uint8
    # frame's front or NHWC's transposes, have few distinct schedules) and MetaSchedule checks
    # the budget between rounds, so a run may end up to one round past it.
    state = json.loads((out / WORK_FOLDER / folder.name / STATE_FILE).read_text())
    assert 8 <= state["trials_done"] < 8 + 8
    assert folder.name.endswith("_nhwc")  # tuned, and so built, in the default layout
    second = splitrun(*args, "--trials", "16", "--resume", timeout=600)
    assert second.returncode == 0, second.stderr
    assert f"{state['trials_done']} trials already measured" in second.stderr
    state = json.loads((out / WORK_FOLDER / folder.name / STATE_FILE).read_text())
    assert 16 <= state["trials_done"] < 16 + 8 and len(state["best_s"]) >= 2
    assert json.loads((folder / KEY_FILE).read_text())["records"] >= 2
    shutil.rmtree(out / WORK_FOLDER)  # what ships is the pruned folder alone
    report = tmp_path / "r.json"
    run = splitrun(
        "--model", "resnet_tiny", "--runs", "3", "--warmup", "1", "--json", str(report),
        env={"SPLITNET_TUNING_DIR": str(out)},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    data = json.loads(report.read_text())
    assert data["ok"] and data["fidelity_max_abs_diff"] <= ATOL_FP32
    assert any(note.startswith("branch0, branch1, head: tuned: database") for note in data["tuning"]), data["tuning"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--target", "pynq-z1"], "cannot run here"),
        (["--target", '{"kind": "llvm"}'], "does not say how many cores"),
        (["--out", "FILE"], "cannot write tuning databases to"),
    ],
)
def test_tune_bad_input_is_one_line(args, expected, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    args = [str(a_file) if a == "FILE" else a for a in args]
    result = splitrun("tune", "--model", "resnet_tiny", *args)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1 and expected in errors[0], result.stderr
    assert "fix:" in errors[0] and "Traceback" not in result.stderr


@pytest.mark.boards
def test_pipelined_frames_report_steady_throughput(tmp_path):
    report = tmp_path / "r.json"
    result = splitrun("--model", "resnet_tiny", "--runs", "6", "--warmup", "1", "--depth", "3", "--json", str(report))
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    assert data["depth"] == 3 and data["steady_fps"] > 0 and data["frames"] == 8 + 1 + 6 + 6
    assert data["fidelity_max_abs_diff"] <= ATOL_FP32  # pipelined answers are checked like the others
    assert "3 in flight" in result.stdout
    bad = splitrun("--model", "resnet_tiny", "--depth", "0")
    assert bad.returncode == 2 and "--depth" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.boards
def test_ctrl_c_keeps_the_records_and_says_how_to_resume(tmp_path):
    out = tmp_path / "tuning"
    proc = splitrun_popen("tune", "--model", "resnet_tiny", "--trials", "1000", "--batch", "8", "--out", str(out))
    deadline = time.monotonic() + 300
    while not list(out.glob(f"{WORK_FOLDER}/*/logs")) and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(10)  # into the search and the first rounds
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "--resume" in err
    (folder,) = [p for p in out.iterdir() if p.name != WORK_FOLDER]
    assert (folder / KEY_FILE).exists() and all((folder / f).exists() for f in DB_FILES)
